// Command sedsim is a software Opal drive: the TCG Storage protocol over a
// Unix socket (opalwire), real encryption at rest, power cycles on demand,
// and its media exposed as a file that losetup(8) turns into a block
// device. The drive itself is package sim; this command creates, serves,
// power-cycles and describes drives. Exit status: 0 success, 1 failure,
// 2 bad usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := exitCode(run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}
