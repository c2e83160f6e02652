# ikegate on Kubernetes: the namespace, the Secrets the chart takes as `existingSecret` (only
# those whose value is given here; the chart generates the others and keeps them across
# upgrades), and the Helm release of helm/ikegate.

locals {
  fullname = substr(trimsuffix(
    length(regexall("ikegate", var.release_name)) > 0 ? var.release_name : "${var.release_name}-ikegate",
  "-"), 0, 40)
  namespace = var.create_namespace ? kubernetes_namespace.this[0].metadata[0].name : var.namespace

  # Whether a secret is given is not secret (only its value is): names and counts stay plain.
  kek_secret       = nonsensitive(var.kek == null) ? null : "${local.fullname}-tf-kek"
  lifecycle_secret = nonsensitive(var.lifecycle_token == null) ? null : "${local.fullname}-tf-lifecycle"
  psk_secret       = nonsensitive(length(var.psks) == 0) ? null : "${local.fullname}-tf-psks"
  relay_secret     = nonsensitive(var.relay_tls == null) ? null : "${local.fullname}-tf-relay-tls"

  # Values the module owns, one YAML document per concern (Helm merges them in order);
  # var.values come after and win.
  value_documents = compact([
    yamlencode({
      image = { for k, v in var.image : k => v if v != null }
      edge = {
        replicas = var.edge_replicas
        service = {
          mode                     = var.edge_service_mode
          loadBalancerSourceRanges = var.load_balancer_source_ranges
        }
      }
      worker        = { replicas = var.worker_replicas }
      clusterDomain = var.cluster_domain
      api           = { tokens = var.api_tokens }
      secrets       = { kek = { id = var.kek_id } }
      redis         = { mode = var.redis.mode }
      metrics = {
        serviceMonitor = { enabled = var.monitoring.service_monitor }
        prometheusRule = { enabled = var.monitoring.prometheus_rule }
        dashboards     = { enabled = var.monitoring.dashboards }
      }
    }),
    var.redis.mode != "external" ? "" : yamlencode({
      redis = { external = { mode = "standalone", host = var.redis.external_host, port = var.redis.external_port } }
    }),
    local.kek_secret == null ? "" : yamlencode({ secrets = { kek = { existingSecret = local.kek_secret } } }),
    local.psk_secret == null ? "" : yamlencode({ secrets = { psks = { existingSecret = local.psk_secret } } }),
    local.relay_secret == null ? "" : yamlencode({ secrets = { relayTls = { existingSecret = local.relay_secret } } }),
    local.lifecycle_secret == null ? "" : yamlencode({
      api = { lifecycleToken = { existingSecret = local.lifecycle_secret, key = "token" } }
    }),
  ])

  edge_service_names = var.edge_service_mode == "mixed" ? ["${local.fullname}-edge"] : ["${local.fullname}-edge-udp", "${local.fullname}-edge-tcp"]
  control_service    = "${local.fullname}-control"
}

resource "kubernetes_namespace" "this" {
  count = var.create_namespace ? 1 : 0
  metadata {
    name   = var.namespace
    labels = var.namespace_labels
  }
}

resource "kubernetes_secret" "kek" {
  count = local.kek_secret == null ? 0 : 1
  metadata {
    name      = local.kek_secret
    namespace = local.namespace
    labels    = { "app.kubernetes.io/managed-by" = "terraform", "app.kubernetes.io/part-of" = "ikegate" }
  }
  data = { kek = lower(var.kek) }
}

resource "kubernetes_secret" "lifecycle_token" {
  count = local.lifecycle_secret == null ? 0 : 1
  metadata {
    name      = local.lifecycle_secret
    namespace = local.namespace
    labels    = { "app.kubernetes.io/managed-by" = "terraform", "app.kubernetes.io/part-of" = "ikegate" }
  }
  data = { token = var.lifecycle_token }
}

resource "kubernetes_secret" "psks" {
  count = local.psk_secret == null ? 0 : 1
  metadata {
    name      = local.psk_secret
    namespace = local.namespace
    labels    = { "app.kubernetes.io/managed-by" = "terraform", "app.kubernetes.io/part-of" = "ikegate" }
  }
  data = var.psks
}

resource "kubernetes_secret" "relay_tls" {
  count = local.relay_secret == null ? 0 : 1
  metadata {
    name      = local.relay_secret
    namespace = local.namespace
    labels    = { "app.kubernetes.io/managed-by" = "terraform", "app.kubernetes.io/part-of" = "ikegate" }
  }
  data = {
    "ca.crt"     = var.relay_tls.ca_crt
    "edge.crt"   = var.relay_tls.edge_crt
    "edge.key"   = var.relay_tls.edge_key
    "worker.crt" = var.relay_tls.worker_crt
    "worker.key" = var.relay_tls.worker_key
  }
}

resource "helm_release" "this" {
  name       = var.release_name
  namespace  = local.namespace
  chart      = var.chart
  repository = var.chart_repository
  version    = var.chart_version
  values     = concat(local.value_documents, var.values)
  wait       = var.wait
  timeout    = var.timeout
  atomic     = false
  # the Secrets it names must exist before the pods that mount them are created
  depends_on = [
    kubernetes_secret.kek,
    kubernetes_secret.lifecycle_token,
    kubernetes_secret.psks,
    kubernetes_secret.relay_tls,
  ]
}

# Read after the release, so a LoadBalancer's address is there when `wait` is on.
data "kubernetes_service" "edge" {
  for_each = toset(local.edge_service_names)
  metadata {
    name      = each.value
    namespace = helm_release.this.namespace
  }
}
