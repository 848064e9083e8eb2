package config

import (
	"fmt"
	"strings"
)

// DefaultLedgersRoot is where ledger metadata lives in the metadata store
// when the bookie's metadataServiceUri does not say (BookKeeper's default).
const DefaultLedgersRoot = "/ledgers"

// BookieMetadataStore translates metadataServiceUri into the URL package
// metastore opens and the path under which ledgers live.
//
//	zk+hierarchical://h1:2181;h2:2181/ledgers  ->  zk:h1:2181,h2:2181  /ledgers
//	zk://h1:2181/my/ledgers (also zk+flat, zk+longhierarchical)
//	                                           ->  zk:h1:2181          /my/ledgers
//	zk:h1:2181, embedded:DIR, memory:NAME      ->  unchanged           /ledgers
func (m MetadataConfig) BookieMetadataStore() (storeURL, ledgersRoot string, err error) {
	uri := strings.TrimSpace(m.MetadataServiceURI)
	if scheme, rest, ok := strings.Cut(uri, "://"); ok {
		switch scheme {
		case "zk", "zk+hierarchical", "zk+longhierarchical", "zk+flat":
		default:
			return "", "", fmt.Errorf("metadataServiceUri %q: unknown scheme %q (want zk+hierarchical://HOST:PORT/LEDGERS_ROOT)", uri, scheme)
		}
		hosts, path, _ := strings.Cut(rest, "/")
		var list []string
		for _, h := range strings.FieldsFunc(hosts, func(r rune) bool { return r == ';' || r == ',' }) {
			if h = strings.TrimSpace(h); h != "" {
				list = append(list, h)
			}
		}
		if len(list) == 0 {
			return "", "", fmt.Errorf("metadataServiceUri %q names no ZooKeeper server", uri)
		}
		root := "/" + strings.Trim(path, "/")
		if root == "/" {
			root = DefaultLedgersRoot
		}
		return "zk:" + strings.Join(list, ","), root, nil
	}
	for _, prefix := range []string{"zk:", "embedded:", "memory:"} {
		if strings.HasPrefix(uri, prefix) {
			return uri, DefaultLedgersRoot, nil
		}
	}
	return "", "", fmt.Errorf("metadataServiceUri %q is neither zk+hierarchical://HOST:PORT/LEDGERS_ROOT nor a metadataStoreUrl (zk:, embedded:, memory:)", uri)
}
