// Command cdk is mediagw's CDK app: `npx cdk synth` / `cdk deploy` run it
// (cdk.json), and it writes the one stack, Mediagw, to cdk.out.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"mediagw/deploy/cdk/stack"
	"mediagw/pkg/topology"
)

func main() {
	defer jsii.Close()
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdk:", err)
		os.Exit(1)
	}
	app := awscdk.NewApp(nil)
	if _, err := stack.New(app, "Mediagw", stack.Props{
		RepoRoot: filepath.Join(wd, "..", ".."), // run from deploy/cdk (cdk.json)
		Topology: topology.Default(),
		StackProps: awscdk.StackProps{
			Description: jsii.String("mediagw: Hikvision media gateway recording control plane"),
		},
	}); err != nil {
		fmt.Fprintln(os.Stderr, "cdk:", err)
		os.Exit(1)
	}
	// Every AwsSolutions finding fails the synth unless suppressed with its reason.
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	app.Synth(nil)
}
