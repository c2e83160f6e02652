output "namespace" {
  description = "The release's namespace."
  value       = helm_release.this.namespace
}

output "release_name" {
  description = "The Helm release name."
  value       = helm_release.this.name
}

output "release_revision" {
  description = "The Helm release revision."
  # provider 1.x/2.x: a list block; 3.x: an object
  value = try(helm_release.this.metadata[0].revision, null)
}

output "edge_service_names" {
  description = "The edge Service(s) peers connect to (one mixed UDP+TCP Service, or a UDP and a TCP one)."
  value       = local.edge_service_names
}

output "edge_load_balancer_addresses" {
  description = "Addresses the cloud gave the edge LoadBalancer Service(s), by Service (IP or host name; empty until assigned)."
  value = {
    for name, s in data.kubernetes_service.edge :
    name => [for i in s.load_balancer_ingress : coalesce(i.ip, i.hostname)]
  }
}

output "control_service_name" {
  description = "The control API Service."
  value       = local.control_service
}

output "api_url" {
  description = "The control API's in-cluster URL (HTTP; the chart serves HTTPS when control.tls.existingSecret is set through var.values)."
  value       = "http://${local.control_service}.${helm_release.this.namespace}.svc.${var.cluster_domain}:8080"
}

output "secret_names" {
  description = "Secrets this module created for the chart (null where the chart generates its own)."
  value = {
    kek             = local.kek_secret
    lifecycle_token = local.lifecycle_secret
    psks            = local.psk_secret
    relay_tls       = local.relay_secret
  }
}
