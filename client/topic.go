package client

import (
	"fmt"
	"strconv"
	"strings"
)

// Topic names: "persistent://tenant/namespace/name" (or non-persistent://).
// Short forms are completed as Pulsar clients do: "name" is
// persistent://public/default/name and "tenant/ns/name" is
// persistent://tenant/ns/name.
const partitionSuffix = "-partition-"

// FullTopicName returns the fully qualified form of topic.
func FullTopicName(topic string) (string, error) {
	rest := topic
	domain := "persistent"
	if i := strings.Index(topic, "://"); i >= 0 {
		domain, rest = topic[:i], topic[i+3:]
		if domain != "persistent" && domain != "non-persistent" {
			return "", fmt.Errorf("%w: %q: unknown domain %q", ErrInvalidTopic, topic, domain)
		}
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: %q: empty name part", ErrInvalidTopic, topic)
		}
	}
	switch {
	case len(parts) == 1 && domain == "persistent" && !strings.Contains(topic, "://"):
		return "persistent://public/default/" + rest, nil
	case len(parts) == 3:
		return domain + "://" + rest, nil
	}
	return "", fmt.Errorf("%w: %q: want name, tenant/namespace/name or domain://tenant/namespace/name", ErrInvalidTopic, topic)
}

// PartitionTopicName is the name of partition i of a partitioned topic.
func PartitionTopicName(topic string, i int) string {
	return topic + partitionSuffix + strconv.Itoa(i)
}

// keyHash routes a keyed message: 31*h + b over the key's bytes in uint32
// arithmetic, which is the Go client's default (JavaStringHash), so that our
// producers and the Go client put a key on the same partition.
func keyHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = 31*h + uint32(s[i])
	}
	return h
}
