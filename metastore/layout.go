package metastore

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Paths of the layout drawn in the package comment.
const (
	LedgersRoot            = "/ledgers"
	AvailableBookiesPath   = "/ledgers/available"
	ReadOnlyBookiesPath    = "/ledgers/available/readonly"
	CookiesPath            = "/ledgers/cookies"
	LedgerIDGenPath        = "/ledgers/idgen"
	LedgerIDGenPrefix      = "/ledgers/idgen/ID-" // create Ephemeral|Sequential
	LongLedgerIDGenPath    = "/ledgers/idgen-long"
	LedgerLayoutPath       = "/ledgers/LAYOUT"
	InstanceIDPath         = "/ledgers/INSTANCEID"
	UnderReplicationPath   = "/ledgers/underreplication"
	ManagedLedgersRoot     = "/managed-ledgers"
	PoliciesRoot           = "/admin/policies"
	ClustersRoot           = "/admin/clusters"
	PartitionedTopicsRoot  = "/admin/partitioned-topics"
	LoadBalanceBrokersRoot = "/loadbalance/brokers"
	LoadBalanceLeaderPath  = "/loadbalance/leader"
	NamespaceOwnershipRoot = "/namespace"
	SchemasRoot            = "/schemas"
)

// LedgerNodePrefix starts the last element of a ledger's metadata path.
const LedgerNodePrefix = "L"

// LedgerPath is where ledger id's metadata lives under root (normally
// LedgersRoot), as BookKeeper's HierarchicalLedgerManager lays it out: ids
// below 2^31-1 as a 10-digit zero-padded number split 2-4-4
// (root/00/0000/L0001), larger ids as a 19-digit number split 3-4-4-4-4
// (root/000/0000/0021/4748/L3648 for 2^31). Each level has at most 10,000
// children.
func LedgerPath(root string, id int64) string {
	if id < math.MaxInt32 {
		s := fmt.Sprintf("%010d", id)
		return root + "/" + s[0:2] + "/" + s[2:6] + "/" + LedgerNodePrefix + s[6:10]
	}
	s := fmt.Sprintf("%019d", uint64(id))
	return root + "/" + s[0:3] + "/" + s[3:7] + "/" + s[7:11] + "/" + s[11:15] + "/" + LedgerNodePrefix + s[15:19]
}

// ParseLedgerPath is the inverse of LedgerPath.
func ParseLedgerPath(root, path string) (int64, error) {
	rest, ok := strings.CutPrefix(path, root+"/")
	bad := func() (int64, error) {
		return 0, fmt.Errorf("%w: %q is not a ledger path under %s", ErrInvalidPath, path, root)
	}
	if !ok {
		return bad()
	}
	parts := strings.Split(rest, "/")
	last := len(parts) - 1
	tail, ok := strings.CutPrefix(parts[last], LedgerNodePrefix)
	if !ok {
		return bad()
	}
	parts[last] = tail
	var widths []int
	switch len(parts) {
	case 3:
		widths = []int{2, 4, 4}
	case 5:
		widths = []int{3, 4, 4, 4, 4}
	default:
		return bad()
	}
	for i, p := range parts {
		if len(p) != widths[i] || strings.Trim(p, "0123456789") != "" {
			return bad()
		}
	}
	id, err := strconv.ParseUint(strings.Join(parts, ""), 10, 63)
	if err != nil {
		return bad()
	}
	if LedgerPath(root, int64(id)) != path {
		return bad()
	}
	return int64(id), nil
}

// ParseSequence returns the counter a Sequential create appended to name
// (its last ten characters), e.g. 1 for "ID-0000000001".
func ParseSequence(name string) (int64, error) {
	if len(name) < 10 {
		return 0, fmt.Errorf("%w: %q has no sequence number", ErrInvalidPath, name)
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %q has no sequence number", ErrInvalidPath, name)
	}
	return n, nil
}

// BookiePath is a writable bookie's registration node.
func BookiePath(bookieID string) string { return AvailableBookiesPath + "/" + bookieID }

// ReadOnlyBookiePath is a read-only bookie's registration node.
func ReadOnlyBookiePath(bookieID string) string { return ReadOnlyBookiesPath + "/" + bookieID }

// CookiePath is a bookie's cookie node.
func CookiePath(bookieID string) string { return CookiesPath + "/" + bookieID }

// ManagedLedgerName is a persistent topic's managed ledger name, as Pulsar
// forms it: tenant/namespace/persistent/<encoded local name>.
func ManagedLedgerName(tenant, namespace, topic string) string {
	return tenant + "/" + namespace + "/persistent/" + EncodeName(topic)
}

// ManagedLedgerPath is where a managed ledger's metadata lives; its cursors
// are its children.
func ManagedLedgerPath(name string) string { return ManagedLedgersRoot + "/" + name }

// TenantPath holds a tenant's info.
func TenantPath(tenant string) string { return PoliciesRoot + "/" + tenant }

// NamespacePoliciesPath holds a namespace's policies.
func NamespacePoliciesPath(tenant, namespace string) string {
	return PoliciesRoot + "/" + tenant + "/" + namespace
}

// ClusterPath holds a cluster's data.
func ClusterPath(cluster string) string { return ClustersRoot + "/" + cluster }

// PartitionedTopicPath holds a partitioned topic's metadata.
func PartitionedTopicPath(tenant, namespace, topic string) string {
	return PartitionedTopicsRoot + "/" + tenant + "/" + namespace + "/persistent/" + EncodeName(topic)
}

// BrokerPath is a live broker's ephemeral registration (and load report).
func BrokerPath(broker string) string { return LoadBalanceBrokersRoot + "/" + broker }

// BundleOwnerPath is the ephemeral node of the broker that owns a namespace
// bundle (bundle as Pulsar names it, e.g. 0x00000000_0xffffffff).
func BundleOwnerPath(tenant, namespace, bundle string) string {
	return NamespaceOwnershipRoot + "/" + tenant + "/" + namespace + "/" + bundle
}

// EncodeName encodes a name for use as one path element the way Pulsar does
// (java.net.URLEncoder with UTF-8): letters, digits and ".-*_" stay, a space
// becomes "+", every other byte "%XX".
func EncodeName(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
