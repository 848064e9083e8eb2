package main

import (
	"context"
	"flag"

	"github.com/magnetar/magnetar/internal/config"
)

func standaloneCommand() *command {
	var delete bool
	return &command{
		name:    "standalone",
		summary: "run a metadata store, a bookie and a broker in one process",
		detail: "Like 'bin/pulsar standalone': an embedded metadata store, one bookie and one broker, cluster\n" +
			"\"standalone\", tenant \"public\", namespace \"public/default\", data under data/.",
		hasRole: true,
		role:    config.Standalone,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&delete, "delete-cookie", false, deleteCookieUsage)
		},
		run: func(ctx context.Context, p *proc, args []string) error {
			if delete {
				return deleteCookieRun(ctx, p, args, true)
			}
			return standaloneRun(ctx, p, args)
		},
	}
}
