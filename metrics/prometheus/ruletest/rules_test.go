package ruletest

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"

	kclprom "github.com/gokcl/kcl/metrics/prometheus"
)

var promql = parser.NewParser(parser.Options{})

// alerts reads ../alerts.yml, validated as Prometheus loads rule files.
func alerts(t *testing.T) map[string]rulefmt.Rule {
	t.Helper()
	groups, errs := rulefmt.ParseFile("../alerts.yml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	out := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r
		}
	}
	return out
}

// dashboardExprs returns every query of ../dashboard.json, with Grafana's
// variables replaced so that they parse as PromQL.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			out = append(out, strings.ReplaceAll(q.Expr, "$__rate_interval", "5m"))
		}
	}
	return out
}

// exported returns the names of the metrics kclprom exports, from their
// descriptions (histograms with their _bucket, _sum and _count series).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc, 100)
	kclprom.New(kclprom.Options{}).Describe(ch)
	close(ch)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
		if strings.HasSuffix(m[1], "_seconds") {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d metrics described", len(names))
	}
	return names
}

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

func TestRulesAndDashboardNameExportedMetrics(t *testing.T) {
	have := exported(t)
	exprs := dashboardExprs(t)
	if len(exprs) < 20 {
		t.Fatalf("only %d dashboard queries", len(exprs))
	}
	for _, r := range alerts(t) {
		exprs = append(exprs, r.Expr)
	}
	for _, e := range exprs {
		for _, name := range metricNames(t, e) {
			if !have[name] {
				t.Errorf("%s: kclprom exports no metric %s", e, name)
			}
		}
	}
}

func TestEveryAlertIsTested(t *testing.T) {
	var names []string
	for name, r := range alerts(t) {
		names = append(names, name)
		if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
			t.Errorf("%s: needs a summary and a severity", name)
		}
		if _, ok := alertCases[name]; !ok {
			t.Errorf("%s: no case in alertCases", name)
		}
	}
	sort.Strings(names)
	t.Log("alerts:", names)
}

// alertCases are, per alert, promqltest scripts where {{expr}} stands for
// the alert's expression: series, then evaluations that must give exactly
// the series listed (none: the alert does not fire).
var alertCases = map[string]string{
	"GokclShardLagHalfRetention": `
load 1m
  gokcl_millis_behind_latest{stream="orders",worker="w1",shard="s-1"} 43300000x10
  gokcl_millis_behind_latest{stream="orders",worker="w1",shard="s-2"} 43100000x10
  gokcl_millis_behind_latest{stream="orders",worker="w2",shard="s-3"} 10x10

eval instant at 5m {{expr}}
  {stream="orders",shard="s-1"} 43300000
`,
	// s-1 is stuck: its lag grows one second per second and its counter is
	// flat, while s-2 is processed. s-3 is slow, not stuck: its lag grows
	// too, but it processes records. s-4 is caught up.
	"GokclShardStuck": `
load 1m
  gokcl_millis_behind_latest{stream="orders",worker="w1",shard="s-1"} 60000+60000x30
  gokcl_records_processed_total{stream="orders",worker="w1",shard="s-1"} 500x30
  gokcl_millis_behind_latest{stream="orders",worker="w2",shard="s-2"} 0x30
  gokcl_records_processed_total{stream="orders",worker="w2",shard="s-2"} 0+1000x30
  gokcl_millis_behind_latest{stream="orders",worker="w2",shard="s-3"} 60000+60000x30
  gokcl_records_processed_total{stream="orders",worker="w2",shard="s-3"} 0+10x30
  gokcl_millis_behind_latest{stream="orders",worker="w1",shard="s-4"} 0x30
  gokcl_records_processed_total{stream="orders",worker="w1",shard="s-4"} 0x30

eval instant at 20m {{expr}}
  {stream="orders",shard="s-1"} 1000

clear

# The whole stream idle, a processor stuck: nothing is processed anywhere,
# which the lag alarm and the worker's health cover, not this one.
load 1m
  gokcl_millis_behind_latest{stream="orders",worker="w1",shard="s-1"} 60000+60000x30
  gokcl_records_processed_total{stream="orders",worker="w1",shard="s-1"} 500x30

eval instant at 20m {{expr}}
`,
	"GokclShardProcessingFails": `
load 1m
  gokcl_process_errors_total{stream="orders",worker="w1",shard="s-1"} 0+2x10
  gokcl_process_errors_total{stream="orders",worker="w1",shard="s-2"} 3x10

eval instant at 10m {{expr}}
  {stream="orders",shard="s-1"} 0.03333333333333333
`,
	"GokclWorkerUnhealthy": `
load 1m
  gokcl_healthy{stream="orders",worker="w1"} 1x5
  gokcl_healthy{stream="orders",worker="w2"} 0x5

eval instant at 5m {{expr}}
  gokcl_healthy{stream="orders",worker="w2"} 0
`,
	"GokclShardsNotHeld": `
load 1m
  gokcl_lease_table_leases{stream="orders",worker="w1"} 4x5
  gokcl_lease_table_leases{stream="orders",worker="w2"} 3x5
  gokcl_leases_held{stream="orders",worker="w1"} 2x5
  gokcl_leases_held{stream="orders",worker="w2"} 1x5
  gokcl_lease_table_leases{stream="audit",worker="w3"} 2x5
  gokcl_leases_held{stream="audit",worker="w3"} 2x5

eval instant at 5m {{expr}}
  {stream="orders"} 4
`,
	"GokclCheckpointsFailing": `
load 1m
  gokcl_checkpoints_total{stream="orders",kind="now",result="error"} 0+1x10
  gokcl_checkpoints_total{stream="audit",kind="now",result="lease_lost"} 0+1x10
  gokcl_checkpoints_total{stream="audit",kind="now",result="success"} 0+60x10

eval instant at 10m {{expr}}
  {stream="orders"} 0.016666666666666666
`,
	"GokclLeaseChurn": `
load 1m
  gokcl_lease_events_total{stream="orders",worker="w1",event="lost",reason="refused"} 0+1x20
  gokcl_lease_events_total{stream="audit",worker="w1",event="lost",reason="refused"} 0x20
  gokcl_lease_events_total{stream="audit",worker="w1",event="taken",reason="unowned"} 0+1x20
  gokcl_lease_events_total{stream="audit",worker="w1",event="handed_off",reason="hand_off"} 0+1x20
  gokcl_lease_events_total{stream="audit",worker="w2",event="taken",reason="hand_off"} 0+1x20

eval instant at 20m {{expr}}
  {stream="orders"} 15
`,
	"GokclGetRecordsThrottled": `
load 1m
  gokcl_get_records_total{stream="orders",result="success"} 0+60x10
  gokcl_get_records_total{stream="orders",result="throttled"} 0+30x10
  gokcl_get_records_total{stream="audit",result="success"} 0+60x10
  gokcl_get_records_total{stream="audit",result="throttled"} 0+5x10

eval instant at 10m {{expr}}
  {stream="orders"} 0.3333333333333333
`,
}

func TestAlertsFireWhenTheyShould(t *testing.T) {
	rules := alerts(t)
	for name, script := range alertCases {
		r, ok := rules[name]
		if !ok {
			t.Errorf("no alert %s in alerts.yml", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			expr := strings.Join(strings.Fields(r.Expr), " ")
			engine := promqltest.NewTestEngine(t, false, 5*time.Minute, promqltest.DefaultMaxSamplesPerQuery)
			promqltest.RunTest(t, strings.ReplaceAll(script, "{{expr}}", expr), engine)
		})
	}
}
