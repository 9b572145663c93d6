// Command netprobe makes one network request and reports the outcome as a
// single JSON line, for short-lived probe pods that check NetworkPolicy.
//
//	netprobe [flags] http METHOD URL [BODY]   exit 0 on any HTTP response
//	netprobe [flags] dns NAME                 exit 0 when NAME resolves
//	netprobe [flags] tcp HOST:PORT            exit 0 when a connection opens
//
// Exit status 1 means the request failed (refused, timed out, unresolvable);
// 2 means the command line was wrong.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("netprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := Options{}
	fs.DurationVar(&opts.Timeout, "timeout", 5*time.Second, "deadline for each attempt")
	fs.IntVar(&opts.Attempts, "attempts", 1, "attempts before giving up; the first success ends the probe")
	fs.DurationVar(&opts.Interval, "interval", time.Second, "pause between attempts")
	fs.DurationVar(&opts.Delay, "delay", 0, "pause before the first attempt")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: netprobe [-timeout D] [-attempts N] [-interval D] [-delay D] http METHOD URL [BODY]")
		fmt.Fprintln(stderr, "       netprobe [-timeout D] [-attempts N] [-interval D] [-delay D] dns NAME")
		fmt.Fprintln(stderr, "       netprobe [-timeout D] [-attempts N] [-interval D] [-delay D] tcp HOST:PORT")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintln(stderr, "netprobe:", err)
		return exitUsage
	}

	var (
		res Result
		err error
	)
	rest := fs.Args()
	switch {
	case len(rest) >= 3 && len(rest) <= 4 && rest[0] == "http":
		body := ""
		if len(rest) == 4 {
			body = rest[3]
		}
		res, err = ProbeHTTP(ctx, opts, rest[1], rest[2], body)
	case len(rest) == 2 && rest[0] == "dns":
		res, err = ProbeDNS(ctx, opts, rest[1])
	case len(rest) == 2 && rest[0] == "tcp":
		res, err = ProbeTCP(ctx, opts, rest[1])
	default:
		fs.Usage()
		return exitUsage
	}
	if err != nil {
		fmt.Fprintln(stderr, "netprobe:", err)
		return exitUsage
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	if !res.OK {
		return exitFailed
	}
	return exitOK
}
