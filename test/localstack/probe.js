// probe.js: helpers for emulators.sh, using only Node's standard library.
//
//   node probe.js ports N          print N free loopback TCP ports, one per line
//   node probe.js ready kinesis|dynamodb URL
//                                  exit 0 when the server at URL answers a real
//                                  API call (ListStreams / ListTables), 1 if not
'use strict';
const http = require('http');
const net = require('net');

function freePorts(n) {
  // Hold every listener open until all are bound, so no port is handed out twice.
  const servers = [];
  let done = 0;
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    servers.push(s);
    s.listen(0, '127.0.0.1', () => {
      if (++done === n) {
        for (const srv of servers) console.log(srv.address().port);
        servers.forEach((srv) => srv.close());
      }
    });
  }
}

function ready(service, url) {
  const api = {
    kinesis: { target: 'Kinesis_20131202.ListStreams', type: 'application/x-amz-json-1.1', key: 'StreamNames' },
    dynamodb: { target: 'DynamoDB_20120810.ListTables', type: 'application/x-amz-json-1.0', key: 'TableNames' },
  }[service];
  if (!api) { console.error(`unknown service ${service}`); process.exit(2); }
  // The servers check that a SigV4 header is present but not the signature.
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const req = http.request(url, {
    method: 'POST',
    timeout: 2000,
    headers: {
      'Content-Type': api.type,
      'X-Amz-Target': api.target,
      'X-Amz-Date': date,
      Authorization: `AWS4-HMAC-SHA256 Credential=test/${date.slice(0, 8)}/us-east-1/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0`,
    },
  }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      try {
        if (res.statusCode === 200 && Array.isArray(JSON.parse(body)[api.key])) process.exit(0);
      } catch (e) { /* not JSON yet */ }
      process.exit(1);
    });
  });
  req.on('error', () => process.exit(1));
  req.on('timeout', () => { req.destroy(); process.exit(1); });
  req.end('{}');
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'ports') freePorts(Number(a));
else if (cmd === 'ready') ready(a, b);
else { console.error('usage: node probe.js ports N | ready kinesis|dynamodb URL'); process.exit(2); }
