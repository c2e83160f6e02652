# ikegate from the local chart, with the module's Secrets for the KEK, a PSK and an API token.
#   terraform init && terraform apply -var kubeconfig=$HOME/.kube/config
# (test/k8s/terraform.test.ts runs exactly this against a real kube-apiserver.)

terraform {
  required_version = ">= 1.3.0"
  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = ">= 1.3.2, < 3.0.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 1.13"
    }
  }
}

variable "kubeconfig" {
  description = "Path of the kubeconfig to deploy with."
  type        = string
}

variable "chart" {
  description = "Path to the chart (helm/ikegate of this repository)."
  type        = string
  default     = "../../../helm/ikegate"
}

variable "namespace" {
  type    = string
  default = "ikegate"
}

variable "kek" {
  description = "64 hex digits; null: the chart generates the KEK."
  type        = string
  default     = null
  sensitive   = true
}

variable "psk_alice" {
  description = "The PSK of the example peer alice (at least 16 characters)."
  type        = string
  default     = null
  sensitive   = true
}

provider "helm" {
  kubernetes {
    config_path = var.kubeconfig
  }
}

provider "kubernetes" {
  config_path      = var.kubeconfig
  load_config_file = true
}

module "ikegate" {
  source = "../.."

  namespace       = var.namespace
  release_name    = "vpn"
  chart           = var.chart
  edge_replicas   = 2
  worker_replicas = 2
  kek             = var.kek
  psks            = var.psk_alice == null ? {} : { alice = var.psk_alice }
  api_tokens = [
    # the SHA-256 of the token "example-admin-token"; `ikegate ctl token new` makes real ones
    { name = "ops", role = "admin", sha256 = "d2eadfb6e52d65b4bbf254e5046c0c495328b4d208f8b1591c229e62c5c6362f" },
  ]
}

output "edge_service_names" {
  value = module.ikegate.edge_service_names
}

output "edge_load_balancer_addresses" {
  value = module.ikegate.edge_load_balancer_addresses
}

output "api_url" {
  value = module.ikegate.api_url
}

output "secret_names" {
  value = module.ikegate.secret_names
}
