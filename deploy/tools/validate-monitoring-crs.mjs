// Validates ServiceMonitor and PrometheusRule objects against the prometheus-operator models of npm
// @kubernetes-models/prometheus-operator (JSON Schema generated from the operator's Go API types).
// Usage: node validate-monitoring-crs.mjs <node_modules dir>  < docs.json   (a JSON array of objects)
// Prints a JSON array: [{kind, name, error}] with error null when valid. Exit 0 unless it cannot run.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
if (!modules) {
  console.error("usage: node validate-monitoring-crs.mjs <node_modules dir> < docs.json");
  process.exit(2);
}
const base = join(modules, "@kubernetes-models", "prometheus-operator", "monitoring.coreos.com", "v1");
const models = {
  ServiceMonitor: (await import(pathToFileURL(join(base, "ServiceMonitor.js")).href)).ServiceMonitor,
  PrometheusRule: (await import(pathToFileURL(join(base, "PrometheusRule.js")).href)).PrometheusRule,
};
const docs = JSON.parse(readFileSync(0, "utf8"));
const results = docs.map((doc) => {
  const Model = models[doc.kind];
  const name = doc.metadata?.name ?? null;
  if (!Model) return { kind: doc.kind, name, error: `no model for kind ${doc.kind}` };
  try {
    new Model(doc).validate();
    return { kind: doc.kind, name, error: null };
  } catch (err) {
    return { kind: doc.kind, name, error: String(err.message ?? err) };
  }
});
process.stdout.write(JSON.stringify(results));
