package main

import (
	"context"
	"flag"

	"github.com/magnetar/magnetar/internal/config"
)

func bookieCommand() *command {
	var delete bool
	return &command{
		name:    "bookie",
		summary: "run a bookie, the storage node that keeps ledgers",
		hasRole: true,
		role:    config.Bookie,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&delete, "delete-cookie", false, deleteCookieUsage)
		},
		run: func(ctx context.Context, p *proc, args []string) error {
			if delete {
				return deleteCookieRun(ctx, p, args, false)
			}
			return bookieRun(ctx, p, args)
		},
	}
}
