# Inputs of the ikegate module. Every one is typed; the ones a typo would turn into a broken
# release are validated here, before anything reaches the cluster.

variable "namespace" {
  description = "Namespace of the release (a DNS-1123 label)."
  type        = string
  default     = "ikegate"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit."
  }
}

variable "create_namespace" {
  description = "Create the namespace (false: it must exist)."
  type        = bool
  default     = true
}

variable "namespace_labels" {
  description = "Labels on the namespace when the module creates it (e.g. pod-security.kubernetes.io/enforce)."
  type        = map(string)
  default     = {}
}

variable "release_name" {
  description = "Helm release name (a DNS-1123 label of at most 53 characters, Helm's limit)."
  type        = string
  default     = "ikegate"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", var.release_name))
    error_message = "The release name must be a DNS-1123 label of at most 53 characters: lower-case letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "chart" {
  description = "The chart: a name in chart_repository, or a path to helm/ikegate."
  type        = string
  default     = "ikegate"
}

variable "chart_repository" {
  description = "Chart repository URL (null: `chart` is a local path)."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version to install (null: the latest, or the local chart's)."
  type        = string
  default     = null
}

variable "image" {
  description = "The ikegate image; null fields keep the chart's defaults."
  type = object({
    repository = optional(string)
    tag        = optional(string)
  })
  default = {}

  validation {
    condition     = var.image.tag == null || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image.tag))
    error_message = "image.tag must be a valid image tag: letters, digits, '_', '.', '-', at most 128 characters."
  }
}

variable "edge_replicas" {
  description = "Edge pods (peers connect to these through the LoadBalancer Service)."
  type        = number
  default     = 2

  validation {
    condition     = var.edge_replicas >= 1 && var.edge_replicas <= 100 && floor(var.edge_replicas) == var.edge_replicas
    error_message = "edge_replicas must be a whole number from 1 to 100."
  }
}

variable "worker_replicas" {
  description = "Worker pods (a StatefulSet: each pod name is a stable worker id)."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_replicas >= 1 && var.worker_replicas <= 64 && floor(var.worker_replicas) == var.worker_replicas
    error_message = "worker_replicas must be a whole number from 1 to 64."
  }
}

variable "edge_service_mode" {
  description = "mixed: one LoadBalancer Service with UDP and TCP ports; perProtocol: one UDP and one TCP Service (for load balancers that cannot mix protocols)."
  type        = string
  default     = "mixed"

  validation {
    condition     = contains(["mixed", "perProtocol"], var.edge_service_mode)
    error_message = "edge_service_mode must be \"mixed\" or \"perProtocol\"."
  }
}

variable "load_balancer_source_ranges" {
  description = "Source CIDRs allowed through the edges' load balancer; empty: everyone."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.load_balancer_source_ranges : can(cidrhost(c, 0))])
    error_message = "Every entry of load_balancer_source_ranges must be a CIDR such as 203.0.113.0/24."
  }
}

variable "kek" {
  description = "The key-encryption key: 32 random octets as 64 hex digits (seals SA keys and PSKs at rest). null: the chart generates one and keeps it across upgrades."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.kek == null || can(regex("^[0-9a-fA-F]{64}$", var.kek))
    error_message = "kek must be exactly 64 hex digits (32 octets)."
  }
}

variable "kek_id" {
  description = "The KEK id (1-255); change it together with kek to rotate."
  type        = number
  default     = 1

  validation {
    condition     = var.kek_id >= 1 && var.kek_id <= 255 && floor(var.kek_id) == var.kek_id
    error_message = "kek_id must be a whole number from 1 to 255."
  }
}

variable "api_tokens" {
  description = "API bearer tokens by SHA-256 (`ikegate ctl token new` prints the line): name, role (viewer, operator or admin), sha256."
  type = list(object({
    name   = string
    role   = string
    sha256 = string
  }))
  default = []

  validation {
    condition     = alltrue([for t in var.api_tokens : contains(["viewer", "operator", "admin"], t.role)])
    error_message = "Each api_tokens role must be viewer, operator or admin."
  }
  validation {
    condition     = alltrue([for t in var.api_tokens : can(regex("^[0-9a-f]{64}$", t.sha256))])
    error_message = "Each api_tokens sha256 must be 64 lower-case hex digits (the SHA-256 of the token, not the token)."
  }
  validation {
    condition     = length(distinct([for t in var.api_tokens : t.name])) == length(var.api_tokens)
    error_message = "api_tokens names must be unique."
  }
}

variable "lifecycle_token" {
  description = "The operator token the pods' preStop drains use (at least 32 characters). null: the chart generates one."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.lifecycle_token == null || length(coalesce(var.lifecycle_token, "x")) >= 32
    error_message = "lifecycle_token must be at least 32 characters."
  }
}

variable "psks" {
  description = "Pre-shared keys by file name (peers say auth: {psk: {file: /etc/ikegate/psks/<name>}}); each at least 16 characters."
  type        = map(string)
  default     = {}
  sensitive   = true

  validation {
    condition     = alltrue([for k, v in var.psks : can(regex("^[-._a-zA-Z0-9]{1,253}$", k)) && length(v) >= 16])
    error_message = "Each PSK name must be a Secret key (letters, digits, '-', '_', '.') and each PSK at least 16 characters."
  }
}

variable "relay_tls" {
  description = "Certificates of the edge-worker relay (PEM): CA, edge and worker certificate and key. null: the chart generates a CA and both."
  type = object({
    ca_crt     = string
    edge_crt   = string
    edge_key   = string
    worker_crt = string
    worker_key = string
  })
  default   = null
  sensitive = true

  validation {
    condition = var.relay_tls == null || alltrue([
      for c in(var.relay_tls == null ? [] : [var.relay_tls.ca_crt, var.relay_tls.edge_crt, var.relay_tls.worker_crt]) :
      can(regex("-----BEGIN CERTIFICATE-----", c))
    ])
    error_message = "relay_tls ca_crt, edge_crt and worker_crt must be PEM certificates."
  }
  validation {
    condition = var.relay_tls == null || alltrue([
      for k in(var.relay_tls == null ? [] : [var.relay_tls.edge_key, var.relay_tls.worker_key]) :
      can(regex("-----BEGIN [A-Z ]*PRIVATE KEY-----", k))
    ])
    error_message = "relay_tls edge_key and worker_key must be PEM private keys."
  }
}

variable "redis" {
  description = "The store: bundled (a Redis StatefulSet in the release) or an external Redis (standalone host)."
  type = object({
    mode          = optional(string, "bundled")
    external_host = optional(string)
    external_port = optional(number, 6379)
  })
  default = {}

  validation {
    condition     = contains(["bundled", "external"], var.redis.mode)
    error_message = "redis.mode must be \"bundled\" or \"external\"."
  }
  validation {
    condition     = var.redis.mode != "external" || try(length(var.redis.external_host) > 0, false)
    error_message = "redis.external_host is required when redis.mode is \"external\"."
  }
}

variable "monitoring" {
  description = "Prometheus Operator objects (need the monitoring.coreos.com CRDs) and Grafana dashboard ConfigMaps."
  type = object({
    service_monitor = optional(bool, false)
    prometheus_rule = optional(bool, false)
    dashboards      = optional(bool, false)
  })
  default = {}
}

variable "values" {
  description = "Extra chart values as YAML documents, applied after the module's own (see helm/ikegate/README.md)."
  type        = list(string)
  default     = []
}

variable "wait" {
  description = "Wait until every Deployment and StatefulSet is ready (and LoadBalancers have an address)."
  type        = bool
  default     = true
}

variable "timeout" {
  description = "Seconds to wait for the release."
  type        = number
  default     = 600

  validation {
    condition     = var.timeout >= 30 && var.timeout <= 3600
    error_message = "timeout must be between 30 and 3600 seconds."
  }
}

variable "cluster_domain" {
  description = "The cluster's DNS domain (for the in-cluster API URL)."
  type        = string
  default     = "cluster.local"
}
