# dealbridge: make demo (the whole flow against the local sandbox) and make test (everything CI runs).

CARGO ?= cargo
VENV  := .venv

.PHONY: all demo test venv fmt fmt-check lint template deploy-rehearsal salesforce-check sandbox watch build cli deploy bench clean

all: test

## demo: run dealbridge locally against the sandbox org and show each seeded deal
demo:
	$(CARGO) run --quiet -p dealbridge-sandbox --bin demo

## test: formatting, lints, the deploy rehearsal, the Salesforce package's offline checks and the
##       full test suite (what .ci/run runs)
test: venv fmt-check lint deploy-rehearsal salesforce-check
	$(CARGO) test --workspace --all-targets --locked

## venv: the Python tools the tests use (moto's server), in .venv
venv:
	@scripts/bootstrap-venv.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint: venv template
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## template: validate template.yaml offline with SAM (translation + cfn-lint) and the serverless rules
template: venv
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 .venv-sam/bin/sam validate --lint
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules

## deploy-rehearsal: the stack as sam deploy would create it, on moto's CloudFormation (with every
##                   option on, then off), read back and checked against the template
deploy-rehearsal: venv
	$(VENV)/bin/python scripts/rehearsal/rehearse.py

## salesforce-check: the Salesforce package (salesforce/) offline: the Salesforce CLI converts it as a
##                   deploy would, every Apex class and trigger parses, every metadata file matches
##                   the Metadata API's types (installs the CLI into salesforce/node_modules once)
salesforce-check:
	scripts/check-salesforce-package.sh

## sandbox: serve the fake Salesforce org (127.0.0.1:8440) and moto with the queues and secrets;
##          writes target/sandbox.env for `make watch`
sandbox: venv
	$(CARGO) run -p dealbridge-sandbox --bin sandbox

## watch: run the real function binaries locally against `make sandbox` (cargo lambda, no Docker)
watch: venv
	PATH="$(CURDIR)/.venv-sam/bin:$$PATH" cargo lambda watch -A 127.0.0.1 -P 9000 --env-file target/sandbox.env

SAM := SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.venv-sam/bin:$$PATH" $(CURDIR)/.venv-sam/bin/sam

## cli: the operator CLI for operators, without the sandbox's fakes (target/release/dealbridge)
cli:
	$(CARGO) build --release --locked -p dealbridge-cli --no-default-features

## build: build the functions for AWS Lambda (sam build: cargo lambda, release, provided.al2023)
build: venv
	$(SAM) build

## deploy: deploy the stack (guided the first time; answers are kept in samconfig.toml)
deploy: build
	$(SAM) deploy --guided

## bench: measure API calls, latency, a burst of 1,000 deals and the release binaries against the
##        sandbox (50 ms per external call) and write BENCHMARKS.md
bench: venv
	$(CARGO) build --release --workspace --bins --locked
	target/release/bench --out BENCHMARKS.md

clean:
	$(CARGO) clean
	rm -rf $(VENV) .venv-sam .aws-sam salesforce/node_modules
