// Command mediagw-ctl shows an operator what mediagw is doing: gateways,
// devices and their status, recording tasks, the latest segment of every
// channel, and the recordings of one channel in a time range. It reads the
// same AWS (or emulator) the services use. Run it without arguments for usage.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"mediagw/services/task-manager/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mediagw-ctl: aws configuration: %v\n", err)
		os.Exit(1)
	}
	os.Exit(ctl.Run(ctx, os.Args[1:], ctl.Env{Stdout: os.Stdout, Stderr: os.Stderr, AWS: cfg, Getenv: os.Getenv}))
}
