package main

import (
	"github.com/magnetar/magnetar/internal/config"
)

func standaloneCommand() *command {
	return withDeleteCookie(&command{
		name:    "standalone",
		summary: "run a metadata store, a bookie and a broker in one process",
		detail: "Like 'bin/pulsar standalone': an embedded metadata store, one bookie and one broker, cluster\n" +
			"\"standalone\", tenant \"public\", namespace \"public/default\", data under data/.",
		hasRole: true,
		role:    config.Standalone,
		run:     standaloneRun,
	}, true)
}
