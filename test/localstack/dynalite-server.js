// dynalite-server.js: starts dynalite (the pinned npm package) for the tests.
//
// dynalite's request handler rethrows a request's 'error' event, so a client
// that gives up on a request mid-way (an SDK call whose context timed out)
// crashes the whole server with "Error: aborted" (ECONNRESET). A real
// DynamoDB endpoint just drops that request; so do we, and keep serving.
//
//   node dynalite-server.js --host 127.0.0.1 --port N [dynalite's options]
'use strict';
const path = require('path');

const argv = require(path.join(__dirname, 'node_modules', 'minimist'))(process.argv.slice(2));
const dynalite = require(path.join(__dirname, 'node_modules', 'dynalite'));

process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`${new Date().toISOString()} client aborted a request (${err.message}); still serving`);
    return;
  }
  console.error(err);
  process.exit(1);
});

const server = dynalite(argv).listen(argv.port || 4567, argv.host || undefined, () => {
  const { port } = server.address();
  console.log(`Dynalite listening at: http://${argv.host || 'localhost'}:${port}`);
});
