# threadlab: the README's commands call these targets.
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test lint fnlen fmt install bench stress mutants clean

## Run the first lesson (offline).
demo:
	$(CARGO) run --release --locked --quiet -- race --iterations 100000

## Lint, then every test: unit, integration and doc tests.
test: lint
	$(CARGO) run --locked --quiet -p threadlab-tools --bin threadlab-mutants -- --check
	$(CARGO) test --locked --workspace --all-targets
	$(CARGO) test --locked --workspace --doc

## Formatting check, clippy with warnings as errors, and no function over 100 lines outside
## the pictures' renderers (tools/fnlen.awk).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	@over=$$(awk -v LIMIT=100 -f tools/fnlen.awk $$(find src tools -name '*.rs' -not -path 'src/pictures/*' | sort)); \
	  if [ -n "$$over" ]; then echo "functions over 100 lines (lines, file:line, name):"; echo "$$over"; exit 1; fi

## Every function over LIMIT lines (default 80), longest first.
fnlen:
	@awk -v LIMIT=$${LIMIT:-80} -f tools/fnlen.awk $$(find src tools -name '*.rs' | sort) | sort -rn

fmt:
	$(CARGO) fmt --all

## Install the binary into ~/.cargo/bin (one binary: the dev tools are the `tools/` member).
install:
	$(CARGO) install --locked --path .

## Benchmarks: figures quoted in the README (not tests).
bench:
	$(CARGO) build --release --locked --quiet --workspace --bins
	$(CARGO) run --release --locked --quiet -p threadlab-tools --bin threadlab-bench

## Stress: every demo over 50 seeds and url-check against misbehaving servers (minutes).
stress:
	$(CARGO) build --release --locked --quiet --workspace --bins
	$(CARGO) run --release --locked --quiet -p threadlab-tools --bin threadlab-stress

## Mutants: break each primitive on purpose and show which demo check catches it (minutes).
mutants:
	$(CARGO) run --release --locked --quiet -p threadlab-tools --bin threadlab-mutants

clean:
	$(CARGO) clean
