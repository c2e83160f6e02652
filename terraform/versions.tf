terraform {
  # optional() object attributes with defaults: Terraform >= 1.3 (OpenTofu >= 1.6 too).
  required_version = ">= 1.3.0"

  required_providers {
    # Tested with helm 1.3.2 (see README.md). The module uses only what the 1.x and 2.x schemas
    # share (`set`/`set_sensitive` blocks, `values`, `metadata`); provider 3.x changed them.
    helm = {
      source  = "hashicorp/helm"
      version = ">= 1.3.2, < 3.0.0"
    }
    # Tested with kubernetes 1.13.4. kubernetes_namespace, kubernetes_secret and the
    # kubernetes_service data source keep their schema in 2.x.
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 1.13.4, < 3.0.0"
    }
  }
}
