package inbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's Prometheus collectors.
type Metrics struct {
	Ingested      *prometheus.CounterVec
	IngestSeconds prometheus.Histogram
	// Locks counts lock steps by step and outcome; outcomes lock_held and
	// lock_lost are the lock conflicts.
	Locks    *prometheus.CounterVec
	Webhooks *prometheus.CounterVec
	// Erased counts erased threads by who erased them (admin, retention).
	Erased *prometheus.CounterVec

	reg prometheus.Registerer
}

// NewMetrics creates the collectors and registers them with reg (when not
// nil). The service adds gauges read from the store at scrape time: queue
// depth and locks per team, SLA breaches.
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
			Help: "Lock steps by step and outcome (ok, lock_held, lock_lost, capacity, empty, error); lock_held and lock_lost are conflicts.",
		}, []string{"step", "outcome"}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_deliveries_total",
			Help: "Outbound webhook delivery attempts by result (delivered, failed, given_up).",
		}, []string{"result"}),
		Erased: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_threads_erased_total",
			Help: "Threads erased with everything on them, by who erased them (admin, retention).",
		}, []string{"by"}),
		reg: reg,
	}
	// Every outcome is exported from the start (at 0), so dashboards and
	// alerts see the series before the first event.
	for _, outcome := range []string{"created", "duplicate", "rejected"} {
		m.Ingested.WithLabelValues(outcome)
	}
	for _, r := range []string{"delivered", "failed", "given_up"} {
		m.Webhooks.WithLabelValues(r)
	}
	for _, by := range []string{"admin", "retention"} {
		m.Erased.WithLabelValues(by)
	}
	if reg != nil {
		reg.MustRegister(m.Ingested, m.IngestSeconds, m.Locks, m.Webhooks, m.Erased)
	}
	return m
}

// storeCollector reads gauges from the store when /metrics is scraped:
// every node reports the same shared numbers.
type storeCollector struct{ s *Service }

var (
	descThreads  = prometheus.NewDesc("switchboard_threads", "Threads per team by status (queued, assigned, pending).", []string{"team", "status"}, nil)
	descOldest   = prometheus.NewDesc("switchboard_queue_oldest_wait_seconds", "Age of the oldest queued thread per team.", []string{"team"}, nil)
	descBreaches = prometheus.NewDesc("switchboard_sla_breaches_total", "Threads that passed their first-response SLA unanswered, per team.", []string{"team"}, nil)
	descLocks    = prometheus.NewDesc("switchboard_locks_held", "Locks held per agent.", []string{"agent"}, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descThreads
	ch <- descOldest
	ch <- descBreaches
	ch <- descLocks
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.s.st.Stats(ctx)
	if err != nil {
		return
	}
	now := c.s.now()
	for _, t := range st.Teams {
		ch <- prometheus.MustNewConstMetric(descThreads, prometheus.GaugeValue, float64(t.Queued), t.Team, "queued")
		ch <- prometheus.MustNewConstMetric(descThreads, prometheus.GaugeValue, float64(t.Assigned), t.Team, "assigned")
		ch <- prometheus.MustNewConstMetric(descThreads, prometheus.GaugeValue, float64(t.Pending), t.Team, "pending")
		wait := oldestWait(&st, &t, now)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, wait, t.Team)
		ch <- prometheus.MustNewConstMetric(descBreaches, prometheus.CounterValue, float64(t.SLABreaches), t.Team)
	}
	for _, a := range st.Agents {
		ch <- prometheus.MustNewConstMetric(descLocks, prometheus.GaugeValue, float64(a.OpenLocks), a.AgentID)
	}
}

// registerStoreMetrics adds the store gauges to the metrics registry (once
// per registry).
func (s *Service) registerStoreMetrics() {
	if s.metrics.reg == nil {
		return
	}
	if err := s.metrics.reg.Register(storeCollector{s}); err != nil {
		if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
			s.log.Warn("store metrics not registered", "err", err)
		}
	}
}
