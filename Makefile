# gokcl's two commands: `make demo` and `make test`. Nothing is installed by
# hand: Go tools run through `go run` at pinned versions, and the test servers
# are installed by `npm ci` into test/localstack/node_modules.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
EMULATORS   := test/localstack/emulators.sh
BENCHCOUNT  ?= 6

# The modules besides the library's own, each with its go.mod: bench/ (it
# depends on other KPL implementations) and the metrics back-ends under
# metrics/ (Prometheus, OpenTelemetry, CloudWatch), which the library's
# go.mod must not depend on. Each is vetted, checked and tested like the root.
SUBMODULES  := $(sort $(patsubst %/go.mod,%,$(filter %/go.mod,$(shell git ls-files --cached --others --exclude-standard '*go.mod'))))

.PHONY: test check fmt-check vet staticcheck unit integration emulators-up emulators-down bench demo chaos

## test: everything CI runs: format, vet, staticcheck, unit tests, integration tests.
test: check unit integration

check: fmt-check vet staticcheck integration-names

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	@for m in $(SUBMODULES); do echo "(cd $$m && $(GO) vet ./...)"; (cd $$m && $(GO) vet ./...); done

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags integration ./...
	@for m in $(SUBMODULES); do echo "(cd $$m && staticcheck ./...)"; (cd $$m && $(GO) run $(STATICCHECK) ./...); done

# Integration tests are selected by name (-run '^TestIntegration'), so a test
# in an integration file under another name would silently never run: refuse it.
integration-names:
	@bad=$$(grep -HnE '^func Test[A-Z]' $$(grep -rl --include='*_test.go' '^//go:build integration' .) \
		| grep -vE ':func TestIntegration|:func TestMain\(' || true); \
	if [ -n "$$bad" ]; then echo "integration tests must be named TestIntegration*:"; echo "$$bad"; exit 1; fi

# The race detector changes allocation counts (and drops sync.Pool entries),
# so the allocation tests also run once without it.
ALLOC_TESTS = Allocations|DoNotAllocate|CostNothing|DoNotPinData

# The other modules' tests run here too (bench/'s compatibility tests, the
# metrics back-ends' tests).
unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '$(ALLOC_TESTS)' ./deagg/ ./consumer/ ./lease/
	@for m in $(SUBMODULES); do echo "(cd $$m && $(GO) test -race -count=1 ./...)"; (cd $$m && $(GO) test -race -count=1 ./...); done

# with-emulators starts a pair of test servers for one recipe and stops them
# when it ends, whatever happens. Each make command gets its own pair, in a
# new state folder (unless GOKCL_EMULATOR_STATE names one): a `make demo`
# while `make test` runs in the same checkout must neither share servers
# with it (the demo then crawls behind the tests' load) nor stop them under
# it when it ends first.
define with-emulators
state=$${GOKCL_EMULATOR_STATE:-}; own=; \
if [ -z "$$state" ]; then state=$$(mktemp -d); own=1; fi; \
export GOKCL_EMULATOR_STATE=$$state; \
trap '$(EMULATORS) stop; if [ -n "$$own" ]; then rm -rf "$$state"; fi' EXIT; \
$(EMULATORS) start; \
eval "$$($(EMULATORS) env)";
endef

# Starts the emulators, runs every integration test, and stops the emulators
# whatever happens.
integration:
	@$(with-emulators) \
	$(GO) test -race -count=1 -tags integration -run '^TestIntegration' -timeout 15m ./...

## chaos: RUNS chaos runs (default 3) of PROFILE (long, or short as in make
## test), the first with seed SEED (default: from the clock), the next ones
## with the next seeds: one line per run and a table of totals. A failed run
## prints the command that replays it.
RUNS    ?= 3
PROFILE ?= long
SEED    ?=
chaos:
	@$(with-emulators) \
	(cd test/chaos && GOKCL_CHAOS_RUNS=$(RUNS) GOKCL_CHAOS_PROFILE=$(PROFILE) GOKCL_CHAOS_SEED=$(SEED) \
		$(GO) test -race -count=1 -tags integration -run '^TestIntegrationChaos$$' -timeout $$(( $(RUNS) * 8 + 5 ))m)

emulators-up:
	@$(EMULATORS) start
	@echo 'now run: eval "$$($(EMULATORS) env)"'

emulators-down:
	@$(EMULATORS) stop

## demo: start the test servers and run examples/demo: three workers consume a
## stream while it is split and merged and one worker restarts. FANOUT=1 reads
## with enhanced fan-out (SubscribeToShard) instead of polling.
demo:
	@$(with-emulators) \
	$(GO) -C examples run ./demo $(if $(FANOUT),-fanout)

## bench: the benchmarks, in benchstat's input format (bench.txt) and summarised.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./... | tee bench.txt
	@for m in $(SUBMODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./...) | tee -a bench.txt; done
	$(GO) run $(BENCHSTAT) bench.txt
