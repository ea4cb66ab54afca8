package inbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the service's Prometheus collectors.
type Metrics struct {
	Ingested      *prometheus.CounterVec
	IngestSeconds prometheus.Histogram
	Locks         *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (when not
// nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_messages_ingested_total",
			Help: "Inbound messages by outcome (created, duplicate, rejected).",
		}, []string{"outcome"}),
		IngestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_ingest_seconds",
			Help:    "Time to store and route a message, fsync included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		Locks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_lock_steps_total",
			Help: "Lock steps by kind and outcome.",
		}, []string{"step", "outcome"}),
	}
	// Every outcome is exported from the start (at 0), so dashboards and
	// alerts see the series before the first message arrives.
	for _, outcome := range []string{"created", "duplicate", "rejected"} {
		m.Ingested.WithLabelValues(outcome)
	}
	if reg != nil {
		reg.MustRegister(m.Ingested, m.IngestSeconds, m.Locks)
	}
	return m
}
