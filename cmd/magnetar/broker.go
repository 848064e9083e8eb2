package main

import (
	"github.com/magnetar/magnetar/internal/config"
)

func brokerCommand() *command {
	return &command{
		name:    "broker",
		summary: "run a broker: the Pulsar protocol, topics, lookup and the admin API",
		hasRole: true,
		role:    config.Broker,
		run:     brokerRun,
	}
}
