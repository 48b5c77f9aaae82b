# mediagw — the two commands a newcomer needs are `make run` and `make test`.
.PHONY: run test test-localstack bench proto build bootstrap clean deploy

## run: install what is missing, start the emulator, provision, start everything (Ctrl-C stops)
run:
	@scripts/run-local.sh

## test: every check and test (what CI runs)
test:
	@scripts/test.sh

## test-localstack: the end-to-end tests and the provisioner's test against LocalStack (DynamoDB and ECS on moto); part of make test
test-localstack:
	@scripts/test-localstack.sh

## deploy: deploy the Mediagw stack (deploy/cdk) to AWS with the pinned CDK CLI; parameters as make variables (README, "Deploy to AWS")
deploy:
	@scripts/deploy.sh

## bench: benchmarks, printed as tables with ratios measured in the same run
bench:
	@scripts/bench.sh

## proto: regenerate pkg/gen from proto/ with the pinned buf
proto:
	@scripts/proto.sh

## build: every binary into bin/
build:
	go build -o bin/ ./deploy/cmd/provision ./services/*/cmd/*

bootstrap:
	@scripts/bootstrap.sh

clean:
	rm -rf bin .run
