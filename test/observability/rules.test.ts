/**
 * Issue #13: the alerting rules shipped in helm/ikegate/rules are valid Prometheus rules and each
 * alert fires when it should and not when it should not (`promtool test rules`, the unit tests in
 * ikegate-alerts.test.yaml). A test case that is removed or an alert without a test fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { prometheusMissing, promtool } from './lib/prometheus.js';

const RULES = new URL('../../helm/ikegate/rules/ikegate-alerts.yaml', import.meta.url).pathname;
const TESTS = new URL('../../helm/ikegate/rules/ikegate-alerts.test.yaml', import.meta.url).pathname;
const skip = requirement(prometheusMissing());

describe('alerting rules (issue #13)', { skip }, () => {
  test('promtool check rules: every rule parses, with its labels and annotations', () => {
    const r = promtool(['check', 'rules', RULES]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS: \d+ rules found/);
  });

  test('every alert has a severity, a summary, a description and a runbook, and at least one unit test that expects it to fire', () => {
    const rules = readFileSync(RULES, 'utf8');
    const tests = readFileSync(TESTS, 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    assert.ok(alerts.length >= 10, `alerts: ${alerts.join(' ')}`);
    for (const block of rules.split(/\n(?=\s+- alert: )/).slice(1)) {
      const name = /- alert: (\w+)/.exec(block)![1];
      for (const key of ['severity:', 'summary:', 'description:', 'runbook:'])
        assert.ok(block.includes(key), `${name} has no ${key}`);
    }
    for (const a of alerts) {
      const firing = new RegExp(`alertname: ${a}\\n\\s+exp_alerts:\\n\\s+- exp_labels`);
      assert.match(tests, firing, `${a} has a test where it fires`);
    }
  });

  test('promtool test rules: each alert fires when it should and stays quiet when it should not', () => {
    const r = promtool(['test', 'rules', TESTS]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });
});
