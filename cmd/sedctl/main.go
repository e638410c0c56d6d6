// Command sedctl manages TCG Opal, Pyrite and Ruby self-encrypting drives,
// real ones and sedsim's: everything sedutil-cli does, with passwords kept
// off the command line, JSON output and readable errors. The
// implementation is internal/sedctl; see its package documentation for the
// exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shiftlock/shiftlock/internal/sedctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := sedctl.Main(ctx, os.Args[1:], sedctl.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
