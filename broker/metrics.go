package broker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the broker's statistics under Pulsar's metric names
// (topic-level metrics, as with exposeTopicLevelMetricsInPrometheus=true),
// computed when scraped: nothing is counted twice on the publish and
// delivery paths.
type metrics struct {
	b *Broker

	rateIn, rateOut, throughputIn, throughputOut        *prometheus.Desc
	inMsgs, outMsgs, inBytes, outBytes                  *prometheus.Desc
	storageSize, backlog, subsCount, prodCount, consCnt *prometheus.Desc
	subBacklog, subRateOut, subUnacked, subRedeliver    *prometheus.Desc
	topicsCount, connections                            *prometheus.Desc
}

func newMetrics(b *Broker) *metrics {
	topic := []string{"cluster", "namespace", "topic"}
	sub := []string{"cluster", "namespace", "topic", "subscription"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &metrics{
		b:             b,
		rateIn:        d("pulsar_rate_in", "Messages published per second.", topic),
		rateOut:       d("pulsar_rate_out", "Messages delivered per second.", topic),
		throughputIn:  d("pulsar_throughput_in", "Bytes published per second.", topic),
		throughputOut: d("pulsar_throughput_out", "Bytes delivered per second.", topic),
		inMsgs:        d("pulsar_in_messages_total", "Messages published.", topic),
		outMsgs:       d("pulsar_out_messages_total", "Messages delivered.", topic),
		inBytes:       d("pulsar_in_bytes_total", "Bytes published.", topic),
		outBytes:      d("pulsar_out_bytes_total", "Bytes delivered.", topic),
		storageSize:   d("pulsar_storage_size", "Bytes stored for the topic.", topic),
		backlog:       d("pulsar_msg_backlog", "Entries not yet acknowledged, summed over subscriptions.", topic),
		subsCount:     d("pulsar_subscriptions_count", "Subscriptions of the topic.", topic),
		prodCount:     d("pulsar_producers_count", "Producers connected to the topic.", topic),
		consCnt:       d("pulsar_consumers_count", "Consumers connected to the topic.", topic),
		subBacklog:    d("pulsar_subscription_back_log", "Entries the subscription has not acknowledged.", sub),
		subRateOut:    d("pulsar_subscription_msg_rate_out", "Messages delivered to the subscription per second.", sub),
		subUnacked:    d("pulsar_subscription_unacked_messages", "Messages delivered and not acknowledged.", sub),
		subRedeliver:  d("pulsar_subscription_msg_rate_redeliver", "Messages redelivered per second.", sub),
		topicsCount:   d("pulsar_topics_count", "Topics loaded on the broker.", []string{"cluster", "namespace"}),
		connections:   d("pulsar_active_connections", "Client connections.", []string{"cluster"}),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.rateIn, m.rateOut, m.throughputIn, m.throughputOut, m.inMsgs, m.outMsgs,
		m.inBytes, m.outBytes, m.storageSize, m.backlog, m.subsCount, m.prodCount, m.consCnt, m.subBacklog,
		m.subRateOut, m.subUnacked, m.subRedeliver, m.topicsCount, m.connections} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	cluster := m.b.opts.ClusterName
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	perNS := map[string]int{}
	for _, t := range m.b.loadedTopics() {
		ns := t.name.NamespaceName()
		perNS[ns]++
		l := []string{cluster, ns, t.name.String()}
		st := t.stats()
		gauge(m.rateIn, st.MsgRateIn, l...)
		gauge(m.rateOut, st.MsgRateOut, l...)
		gauge(m.throughputIn, st.MsgThroughputIn, l...)
		gauge(m.throughputOut, st.MsgThroughputOut, l...)
		counter(m.inMsgs, float64(st.MsgInCounter), l...)
		counter(m.outMsgs, float64(st.MsgOutCounter), l...)
		counter(m.inBytes, float64(st.BytesInCounter), l...)
		counter(m.outBytes, float64(st.BytesOutCounter), l...)
		gauge(m.storageSize, float64(st.StorageSize), l...)
		var backlog int64
		consumers := 0
		for name, s := range st.Subscriptions {
			backlog += s.MsgBacklog
			consumers += len(s.Consumers)
			sl := append(l[:3:3], name)
			gauge(m.subBacklog, float64(s.MsgBacklog), sl...)
			gauge(m.subRateOut, s.MsgRateOut, sl...)
			gauge(m.subUnacked, float64(s.UnackedMessages), sl...)
			gauge(m.subRedeliver, s.MsgRateRedeliver, sl...)
		}
		gauge(m.backlog, float64(backlog), l...)
		gauge(m.subsCount, float64(len(st.Subscriptions)), l...)
		gauge(m.prodCount, float64(len(st.Publishers)), l...)
		gauge(m.consCnt, float64(consumers), l...)
	}
	for ns, n := range perNS {
		gauge(m.topicsCount, float64(n), cluster, ns)
	}
	gauge(m.connections, float64(len(m.b.connections())), cluster)
}
