// Package ruletest checks kclprom's alert rules and dashboard: their PromQL
// parses, names only metrics that kclprom exports, and the alerts fire on
// the situations they describe and not on others. It is a module of its
// own because the Prometheus server's packages it uses are large, and users
// of kclprom must not download them.
package ruletest
