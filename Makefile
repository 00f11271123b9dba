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

## cli: the operator CLI for operators, without the sandbox's fakes (target/release/dealbridge)
cli:
	$(CARGO) build --release --locked -p dealbridge-cli --no-default-features

## build: build the ten functions for AWS Lambda (provided.al2023) in one release build
##        (cargo lambda) into dist/lambda/<binary>/bootstrap, for arm64 when the aarch64
##        standard library is installed, else x86_64 with a warning; ARCH=arm64|x86_64 chooses.
##        The architecture built is recorded in dist/lambda/architecture
build: venv
	scripts/build-functions.sh

## deploy: build, then deploy the stack with those binaries as the architecture they were built for
##         (FunctionArchitecture); guided the first time or with GUIDED=1, the answers are kept in
##         samconfig.toml
deploy: build
	scripts/deploy.sh

## bench: measure API calls, latency, a burst of 1,000 deals and the release binaries against the
##        sandbox (50 ms per external call) and write BENCHMARKS.md
bench: venv
	$(CARGO) build --release --workspace --bins --locked
	target/release/bench --out BENCHMARKS.md

## clean: cargo's build, the Lambda artifacts (dist/), the virtualenvs and the Salesforce CLI
clean:
	$(CARGO) clean
	rm -rf dist $(VENV) .venv-sam .aws-sam salesforce/node_modules
