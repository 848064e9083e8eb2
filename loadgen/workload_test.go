package loadgen

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseOMBWorkloads(t *testing.T) {
	fsys := os.DirFS("testdata/omb")
	type want struct {
		name                       string
		topics, partitions, size   int
		rate                       float64
		subs, consumers, producers int
		backlogGB                  float64
		duration, warmup           time.Duration
		keys                       KeyDistributor
		randomized                 bool
		payloadFile                string
		randomRatio                float64
		poolSize                   int
	}
	for file, w := range map[string]want{
		"fixed-rate-16p-1kb.yaml": {
			name: "fixed rate, 1 topic x 16 partitions, 1 KiB", topics: 1, partitions: 16, size: 1024, rate: 50000,
			subs: 1, consumers: 1, producers: 1, duration: 15 * time.Minute, warmup: time.Minute,
			keys: NoKey, payloadFile: "payload/payload-1Kb.data",
		},
		"max-rate-16p-1kb.yaml": {
			name: "max rate, 1 topic x 16 partitions", topics: 1, partitions: 16, size: 1024, rate: 0,
			subs: 1, consumers: 1, producers: 1, duration: 5 * time.Minute, warmup: time.Minute,
			keys: NoKey, payloadFile: "payload/payload-1Kb.data",
		},
		"backlog-16p-1kb.yaml": {
			name: "backlog drain, 1 topic x 16 partitions", topics: 1, partitions: 16, size: 1024, rate: 100000,
			subs: 1, consumers: 1, producers: 1, backlogGB: 100, duration: 5 * time.Minute, warmup: time.Minute,
			keys: NoKey, payloadFile: "payload/payload-1Kb.data",
		},
		"randomized-100p-4p4c.yaml": {
			name: "randomized payloads, 4 producers, 4 consumers, 100 partitions", topics: 1, partitions: 100,
			size: 1024, rate: 200000, subs: 1, consumers: 4, producers: 4, duration: 5 * time.Minute,
			warmup: time.Minute, keys: NoKey, randomized: true, randomRatio: 0.5, poolSize: 1000,
		},
		"single-partition-1kb.yaml": {
			name: "1 topic, 1 partition, 1 KiB", topics: 1, partitions: 1, size: 1024, rate: 50000,
			subs: 1, consumers: 1, producers: 1, duration: 15 * time.Minute, warmup: time.Minute,
			keys: NoKey, payloadFile: "payload/payload-1Kb.data",
		},
	} {
		got, err := LoadWorkload(fsys, file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got.Name != w.name || got.Topics != w.topics || got.PartitionsPerTopic != w.partitions ||
			got.MessageSize != w.size || got.ProducerRate != w.rate || got.SubscriptionsPerTopic != w.subs ||
			got.ConsumerPerSubscription != w.consumers || got.ProducersPerTopic != w.producers ||
			got.ConsumerBacklogSizeGB != w.backlogGB || got.TestDuration() != w.duration ||
			got.Warmup() != w.warmup || got.KeyDistributor != w.keys || got.UseRandomizedPayloads != w.randomized ||
			got.PayloadFile != w.payloadFile || got.RandomBytesRatio != w.randomRatio ||
			got.RandomizedPayloadPoolSize != w.poolSize || got.BacklogDrainRatio != 1 {
			t.Errorf("%s: parsed %+v, want %+v", file, got, w)
		}
	}
}

func TestParseWorkloadFields(t *testing.T) {
	w, err := ParseWorkload([]byte(`
name: ours
topics: 3
partitionsPerTopic: 0
messageSize: 100
subscriptionsPerTopic: 2
consumerPerSubscription: 2
producersPerTopic: 2
producerRate: 1500.5
keyDistributor: KEY_ROUND_ROBIN
testDurationMinutes: 0.5
warmupDurationMinutes: 0
backlogDrainRatio: 0.9
producerStartRate: 5000   # an OMB fork's key: ignored, as OMB ignores unknown keys
`))
	if err != nil {
		t.Fatal(err)
	}
	if w.Producers() != 6 || w.Consumers() != 12 || w.TestDuration() != 30*time.Second || w.Warmup() != 0 ||
		w.KeyDistributor != KeyRoundRobin || w.ProducerRate != 1500.5 || w.BacklogDrainRatio != 0.9 {
		t.Fatalf("parsed %+v", w)
	}
	for name, doc := range map[string]string{
		"no topics":          "topics: 0\nmessageSize: 1\nproducersPerTopic: 1",
		"no producers":       "topics: 1\nmessageSize: 1\nproducersPerTopic: 0",
		"no size":            "topics: 1\nmessageSize: 0\nproducersPerTopic: 1",
		"negative rate":      "topics: 1\nmessageSize: 1\nproducersPerTopic: 1\nproducerRate: -1",
		"subs w/o consumers": "topics: 1\nmessageSize: 1\nproducersPerTopic: 1\nsubscriptionsPerTopic: 1",
		"unknown keys":       "topics: 1\nmessageSize: 1\nproducersPerTopic: 1\nkeyDistributor: SOMETIMES",
		"backlog at max":     "topics: 1\nmessageSize: 1\nproducersPerTopic: 1\nsubscriptionsPerTopic: 1\nconsumerPerSubscription: 1\nconsumerBacklogSizeGB: 1",
		"drain ratio":        "topics: 1\nmessageSize: 1\nproducersPerTopic: 1\nbacklogDrainRatio: 2",
		"not yaml":           "topics: [1",
		"wrong type":         "topics: many",
	} {
		if _, err := ParseWorkload([]byte(doc)); !errors.Is(err, ErrInvalidWorkload) {
			t.Errorf("%s: err %v, want ErrInvalidWorkload", name, err)
		}
	}
}
