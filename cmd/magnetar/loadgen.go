package main

func loadgenCommand() *command {
	return &command{
		name:    "loadgen",
		summary: "drive producers and consumers at a cluster and record their latency",
		pending: "see issue #9",
	}
}
