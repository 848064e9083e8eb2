package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Input is everything Load merges over the role's defaults. cmd/ reads the
// file, the environment and the flags and hands them over; this package reads
// nothing itself.
type Input struct {
	// ConfName names the conf file in messages ("conf/broker.conf"). With
	// ConfData nil there is no file.
	ConfName string
	ConfData []byte
	// Env is the process environment; only MAGNETAR_ variables are looked at.
	// A variable names a key as spelled (MAGNETAR_brokerServicePort) or in
	// upper case (MAGNETAR_BROKERSERVICEPORT). Keys of other roles are
	// ignored, so one environment can serve every process; unknown names
	// become Warnings.
	Env map[string]string
	// Flags are the command line's settings in the order given; later ones
	// win. Their Source names the flag.
	Flags []Setting
}

// Defaults returns the built-in configuration of role.
func Defaults(role Role) *Config {
	c := &Config{Role: role, sources: map[string]Source{}}
	for _, k := range schema().keys {
		v, _ := parseValue(k, k.Default(role)) // checked by buildSchema
		store(k.bind(c), v)
		c.sources[k.Name] = Source{Kind: FromDefault}
	}
	return c
}

// Load merges defaults, the conf file, the environment and the flags, in that
// order, and validates the result. Every problem found is reported, joined;
// each is an *Error naming the key and where it was given.
func Load(role Role, in Input) (*Config, error) {
	if role >= numRoles {
		return nil, fmt.Errorf("config: unknown role %d", role)
	}
	c := Defaults(role)
	var errs []error

	if in.ConfData != nil {
		settings, err := ParseFile(in.ConfName, in.ConfData)
		if err != nil {
			errs = append(errs, err)
		}
		for _, s := range settings {
			if err := c.apply(s); err != nil {
				errs = append(errs, err)
			}
		}
	}

	envSettings, err := c.envSettings(in.Env)
	if err != nil {
		errs = append(errs, err)
	}
	for _, s := range envSettings {
		if err := c.apply(s); err != nil {
			errs = append(errs, err)
		}
	}

	for _, s := range in.Flags {
		if err := c.apply(s); err != nil {
			errs = append(errs, err)
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Set applies one setting, as Load does for each it merges. It lets code (a
// benchmark, a test) adjust a Config by key name; call Validate afterwards.
func (c *Config) Set(s Setting) error { return c.apply(s) }

func (c *Config) apply(s Setting) error {
	k, ok := schemaIndex()[s.Key]
	if !ok {
		return &Error{Source: s.Source, Key: s.Key, Kind: ErrUnknownKey,
			Msg: fmt.Sprintf("unknown key %q%s", s.Key, suggestion(s.Key, c.Role))}
	}
	if !k.In(c.Role) {
		return &Error{Source: s.Source, Key: s.Key, Kind: ErrWrongRole,
			Msg: fmt.Sprintf("key %q is not a %s setting (it belongs in %s)", s.Key, c.Role, strings.Join(k.Files(), ", "))}
	}
	raw := s.Value
	if raw == "" {
		raw = k.Default(c.Role) // an empty value means the default, as in Pulsar
	}
	v, err := parseValue(k, raw)
	if err != nil {
		return &Error{Source: s.Source, Key: s.Key, Kind: ErrBadValue,
			Msg: fmt.Sprintf("bad value for %s: %v", s.Key, err)}
	}
	store(k.bind(c), v)
	if c.sources == nil {
		c.sources = map[string]Source{}
	}
	c.sources[k.Name] = s.Source
	return nil
}

// envSettings picks the MAGNETAR_ variables that name keys of c's role, in a
// stable order.
func (c *Config) envSettings(env map[string]string) ([]Setting, error) {
	names := make([]string, 0, len(env))
	for name := range env {
		if strings.HasPrefix(name, EnvPrefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	type found struct {
		name, value string
	}
	byKey := map[string]found{}
	var keys []string
	var errs []error
	for _, name := range names {
		suffix := name[len(EnvPrefix):]
		k, ok := schema().byName[suffix]
		if !ok {
			k, ok = schema().byLower[lower(suffix)]
			if !ok || suffix != strings.ToUpper(suffix) {
				ok = false
			}
		}
		if !ok {
			if hint := suggestion(suffix, c.Role); hint != "" {
				c.warnings = append(c.warnings, fmt.Sprintf("environment %s: no such key%s; ignored", name, hint))
			} else {
				c.warnings = append(c.warnings, fmt.Sprintf("environment %s: no such key; ignored", name))
			}
			continue
		}
		if !k.In(c.Role) {
			continue // meant for another role sharing this environment
		}
		if prev, dup := byKey[k.Name]; dup {
			if prev.value != env[name] {
				errs = append(errs, &Error{Source: Source{Kind: FromEnv, Name: name}, Key: k.Name, Kind: ErrDuplicate,
					Msg: fmt.Sprintf("%s and %s both set %s, to different values", prev.name, name, k.Name)})
			}
			continue
		}
		byKey[k.Name] = found{name, env[name]}
		keys = append(keys, k.Name)
	}
	out := make([]Setting, 0, len(keys))
	for _, key := range keys {
		f := byKey[key]
		out = append(out, Setting{Key: key, Value: strings.TrimSpace(f.value), Source: Source{Kind: FromEnv, Name: f.name}})
	}
	return out, errors.Join(errs...)
}

// Validate checks the rules that involve several keys, and that the keys a
// role cannot run without are set. Errors name the key and its source.
func (c *Config) Validate() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &Error{Source: c.Source(key), Key: key, Kind: ErrInvalid, Msg: fmt.Sprintf(format, args...)})
	}
	// show spells "key=value (source)" for messages about a second key.
	show := func(key string) string {
		v, _ := c.Lookup(key)
		return fmt.Sprintf("%s=%s (%s)", key, v, c.Source(key))
	}

	if c.Role == Standalone || c.Role == Broker {
		if c.Metadata.ClusterName == "" {
			fail("clusterName", "clusterName is empty: a %s must name its cluster", c.Role)
		}
		if c.Metadata.MetadataStoreURL == "" {
			fail("metadataStoreUrl", "metadataStoreUrl is empty: the %s needs a metadata store", c.Role)
		}
		ml := c.ManagedLedger
		if ml.WriteQuorum > ml.EnsembleSize {
			fail("managedLedgerDefaultWriteQuorum", "managedLedgerDefaultWriteQuorum=%d exceeds %s", ml.WriteQuorum, show("managedLedgerDefaultEnsembleSize"))
		}
		if ml.AckQuorum > ml.WriteQuorum {
			fail("managedLedgerDefaultAckQuorum", "managedLedgerDefaultAckQuorum=%d exceeds %s", ml.AckQuorum, show("managedLedgerDefaultWriteQuorum"))
		}
		if ml.MinLedgerRolloverTime > ml.MaxLedgerRolloverTime {
			fail("managedLedgerMinLedgerRolloverTimeMinutes", "managedLedgerMinLedgerRolloverTimeMinutes exceeds %s", show("managedLedgerMaxLedgerRolloverTimeMinutes"))
		}
		if c.Broker.DispatcherMinReadBatchSize > c.Broker.DispatcherMaxReadBatchSize {
			fail("dispatcherMinReadBatchSize", "dispatcherMinReadBatchSize=%d exceeds %s", c.Broker.DispatcherMinReadBatchSize, show("dispatcherMaxReadBatchSize"))
		}
	}
	if c.Role == Standalone || c.Role == Bookie {
		b := c.Bookie
		if b.JournalDirectory == "" && len(b.JournalDirectories) == 0 {
			fail("journalDirectory", "journalDirectory is empty and journalDirectories is not set: the bookie needs a journal")
		}
		if b.DiskUsageLwmThreshold > b.DiskUsageThreshold {
			fail("diskUsageLwmThreshold", "diskUsageLwmThreshold=%v exceeds %s", b.DiskUsageLwmThreshold, show("diskUsageThreshold"))
		}
		if b.JournalPreAllocSizeMB > b.JournalMaxSizeMB {
			fail("journalPreAllocSizeMB", "journalPreAllocSizeMB=%d exceeds %s", b.JournalPreAllocSizeMB, show("journalMaxSizeMB"))
		}
		if c.Role == Standalone && c.Broker.MaxMessageSize+10*1024 > c.Network.NettyMaxFrameSizeBytes {
			fail("nettyMaxFrameSizeBytes", "nettyMaxFrameSizeBytes=%d cannot carry a message of %s plus 10 KiB of metadata", c.Network.NettyMaxFrameSizeBytes, show("maxMessageSize"))
		}
	}
	if c.Role == Bookie {
		if _, _, err := c.Metadata.BookieMetadataStore(); err != nil {
			fail("metadataServiceUri", "%v", err)
		}
	}

	// Two listeners of one process cannot share a port (0 picks a free one).
	var ports []string
	switch c.Role {
	case Standalone:
		ports = []string{"brokerServicePort", "webServicePort", "bookiePort"}
	case Broker:
		ports = []string{"brokerServicePort", "webServicePort"}
	case Bookie:
		ports = []string{"bookiePort", "prometheusStatsHttpPort"}
	}
	for i, a := range ports {
		for _, b := range ports[:i] {
			va, _ := c.Lookup(a)
			vb, _ := c.Lookup(b)
			if va == vb && va != "0" {
				fail(a, "%s=%s is the port of %s too", a, va, show(b))
			}
		}
	}
	return errors.Join(errs...)
}
