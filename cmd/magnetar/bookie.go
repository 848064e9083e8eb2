package main

import (
	"github.com/magnetar/magnetar/internal/config"
)

func bookieCommand() *command {
	return withDeleteCookie(&command{
		name:    "bookie",
		summary: "run a bookie, the storage node that keeps ledgers",
		hasRole: true,
		role:    config.Bookie,
		run:     bookieRun,
	}, false)
}
