package ociserve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, on a registry of their own
// (no global state). A nil *Metrics records nothing.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	in, out   prometheus.Counter
	uploading prometheus.Gauge
	handler   http.Handler
}

// NewMetrics returns the metrics, with the Go runtime and process
// collectors beside them.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "artifactstore_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route"}),
		in: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artifactstore_http_received_bytes_total", Help: "Request body bytes received.",
		}),
		out: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artifactstore_http_sent_bytes_total", Help: "Response body bytes sent.",
		}),
		uploading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "artifactstore_oci_uploads_in_progress", Help: "Requests streaming blob bytes into the store now.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.in, m.out, m.uploading,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// ServeHTTP serves /metrics in the Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Registry is the Prometheus registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) observe(route, method string, code int, d time.Duration, out int64) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
	m.out.Add(float64(out))
}

func (m *Metrics) bytesIn(n int) {
	if m != nil && n > 0 {
		m.in.Add(float64(n))
	}
}

func (m *Metrics) uploadStarted() {
	if m != nil {
		m.uploading.Inc()
	}
}

func (m *Metrics) uploadEnded() {
	if m != nil {
		m.uploading.Dec()
	}
}
