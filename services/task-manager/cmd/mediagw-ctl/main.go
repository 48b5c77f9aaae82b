// Command mediagw-ctl shows an operator what mediagw is doing: gateways,
// devices and their status, recording tasks, the latest segment of every
// channel, the recordings of one channel in a time range, the
// health-sentinel's incidents and the alert mails it sent. It reads the
// same AWS (or emulator) the services use. Run it without arguments for
// usage; the commands are in internal/ports/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"mediagw/services/task-manager/internal/ports/cli"
	ctlwiring "mediagw/services/task-manager/internal/wiring/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Open: ctlwiring.Open}))
}
