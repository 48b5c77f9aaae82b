// Command provision creates every resource of pkg/topology/topology.json
// against AWS or, with AWS_ENDPOINT_URL set, the local emulator. It is
// idempotent: run it as often as you like.
//
//	provision [--resource-prefix P] [--local-parameters] [--env-file FILE] [--only KINDS]
//
// --only limits it to some kinds of resources, e.g.
// topics,queues,rules,tables,buckets,parameters: everything but ECS, which
// LocalStack's free build does not serve (docker-compose.yml).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"mediagw/deploy/provision"
	"mediagw/pkg/awsenv"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
)

func main() {
	c := service.NewCommandConfig("provision", "creates mediagw's topics, queues, tables, bucket, parameters and ECS resources (idempotent)")
	prefix := c.String("RESOURCE_PREFIX", "", "prefix for every physical resource name")
	local := c.Bool("LOCAL_PARAMETERS", false, "write the SSM parameters' local values (emulator only, never in AWS)")
	envFile := c.String("ENV_FILE", "", "write KEY=value lines telling services where each resource is")
	var only *[]string
	only = c.List("ONLY", "", "kinds of resources to apply, of "+strings.Join(provision.Kinds, ", ")+" (default all)", service.Check(func() error {
		return provision.CheckKinds(*only)
	}))
	c.Validate(func() error {
		if *local && os.Getenv("AWS_ENDPOINT_URL") == "" {
			return fmt.Errorf("LOCAL_PARAMETERS writes development passwords and is only for the emulator: set AWS_ENDPOINT_URL")
		}
		return nil
	})
	if err := c.Parse(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, service.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := awsenv.Load(ctx)
	if err != nil {
		fail(err)
	}
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: *prefix, LocalParameters: *local, Only: *only})
	if err != nil {
		fail(err)
	}
	if *envFile != "" {
		if err := os.WriteFile(*envFile, []byte(res.EnvLines()), 0o600); err != nil {
			fail(err)
		}
	}
	cluster := "no ECS"
	if res.Cluster != "" {
		cluster = "ECS cluster " + res.Cluster
	}
	fmt.Fprintf(os.Stderr, "provisioned %d topics, %d queues, %d tables, %d buckets, %d parameters, %s\n",
		len(res.Topics), len(res.Queues), len(res.Tables), len(res.Buckets), len(res.Parameters), cluster)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "provision:", err)
	os.Exit(1)
}
