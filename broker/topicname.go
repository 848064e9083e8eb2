package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/magnetar/magnetar/metastore"
)

// Topic domains.
const (
	domainPersistent    = "persistent"
	domainNonPersistent = "non-persistent"
)

// partitionSuffix separates a partitioned topic's name from a partition's
// index: "<name>-partition-<i>".
const partitionSuffix = "-partition-"

// The tenant and namespace of names given in short form.
const (
	defaultTenant    = "public"
	defaultNamespace = "default"
)

// ErrInvalidTopicName: a topic name that cannot be parsed.
var ErrInvalidTopicName = errors.New("broker: invalid topic name")

// TopicName is a parsed topic name: domain://tenant/namespace/local.
// Partition is the partition index when local ends in -partition-<i>, and
// -1 otherwise.
type TopicName struct {
	Domain    string
	Tenant    string
	Namespace string
	Local     string
	Partition int
}

// ParseTopicName parses a topic name in any of the forms Pulsar clients
// send: "t" (persistent://public/default/t), "tenant/ns/t", and
// "persistent://tenant/ns/t" or "non-persistent://tenant/ns/t". The
// four-part names of Pulsar's v1 layout (with a cluster) are refused.
func ParseTopicName(s string) (TopicName, error) {
	bad := func(why string) (TopicName, error) {
		return TopicName{}, fmt.Errorf("%w %q: %s", ErrInvalidTopicName, s, why)
	}
	rest := s
	domain := domainPersistent
	if i := strings.Index(s, "://"); i >= 0 {
		domain, rest = s[:i], s[i+3:]
		if domain != domainPersistent && domain != domainNonPersistent {
			return bad("the domain must be persistent or non-persistent")
		}
	} else if !strings.Contains(s, "/") {
		rest = defaultTenant + "/" + defaultNamespace + "/" + s
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		return bad("want tenant/namespace/topic")
	}
	t := TopicName{Domain: domain, Tenant: parts[0], Namespace: parts[1], Local: parts[2], Partition: -1}
	if err := checkNamePart(t.Tenant); err != nil {
		return bad("tenant: " + err.Error())
	}
	if err := checkNamePart(t.Namespace); err != nil {
		return bad("namespace: " + err.Error())
	}
	if t.Local == "" {
		return bad("empty topic name")
	}
	if strings.Contains(t.Local, "/") {
		return bad("the topic name has more than three parts (the v1 layout with a cluster is not supported)")
	}
	if i := strings.LastIndex(t.Local, partitionSuffix); i > 0 {
		if n, err := strconv.Atoi(t.Local[i+len(partitionSuffix):]); err == nil && n >= 0 &&
			strconv.Itoa(n) == t.Local[i+len(partitionSuffix):] {
			t.Partition = n
		}
	}
	return t, nil
}

// checkNamePart applies Pulsar's rule for tenant and namespace names:
// letters, digits and -=:._ only.
func checkNamePart(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '=', c == ':', c == '.', c == '_':
		default:
			return fmt.Errorf("character %q is not allowed", c)
		}
	}
	return nil
}

// String is the fully qualified name.
func (t TopicName) String() string {
	return t.Domain + "://" + t.Tenant + "/" + t.Namespace + "/" + t.Local
}

// Persistent reports whether the topic is stored.
func (t TopicName) Persistent() bool { return t.Domain == domainPersistent }

// NamespaceName is "tenant/namespace".
func (t TopicName) NamespaceName() string { return t.Tenant + "/" + t.Namespace }

// IsPartition reports whether the name is a partition of a partitioned
// topic.
func (t TopicName) IsPartition() bool { return t.Partition >= 0 }

// Base is the partitioned topic a partition belongs to (the name itself
// when it is not a partition).
func (t TopicName) Base() TopicName {
	if t.Partition < 0 {
		return t
	}
	b := t
	b.Local = t.Local[:strings.LastIndex(t.Local, partitionSuffix)]
	b.Partition = -1
	return b
}

// PartitionName is partition i of t.
func (t TopicName) PartitionName(i int) TopicName {
	p := t
	p.Local = t.Local + partitionSuffix + strconv.Itoa(i)
	p.Partition = i
	return p
}

// ManagedLedgerName is the managed ledger of a persistent topic
// (tenant/namespace/persistent/<encoded local name>).
func (t TopicName) ManagedLedgerName() string {
	return metastore.ManagedLedgerName(t.Tenant, t.Namespace, t.Local)
}

// partitionedPath is where the partitioned metadata of t lives in the
// configuration store.
func (t TopicName) partitionedPath() string {
	return metastore.PartitionedTopicsRoot + "/" + t.Tenant + "/" + t.Namespace + "/" + t.Domain + "/" +
		metastore.EncodeName(t.Local)
}

// schemaPath is where the schemas of t (of its partitioned topic, for a
// partition) live.
func (t TopicName) schemaPath() string {
	b := t.Base()
	return metastore.SchemasRoot + "/" + b.Tenant + "/" + b.Namespace + "/" + metastore.EncodeName(b.Local)
}

// decodeName inverts metastore.EncodeName (URL query decoding: "+" is a
// space, "%XX" a byte).
func decodeName(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w: bad escape in %q", ErrInvalidTopicName, s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%w: bad escape in %q", ErrInvalidTopicName, s)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
