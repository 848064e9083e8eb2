package main

func benchCommand() *command {
	return &command{
		name:    "bench",
		summary: "run benchmark scenarios and report results against the machine's limits",
		pending: "see issue #9",
	}
}
