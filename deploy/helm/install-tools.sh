#!/usr/bin/env bash
# What deploy/test/helm.test.ts needs, all from the Go module proxy and built here (nothing is fetched at test time):
#   helm and kubeconform  -> .tools/go/bin
#   the Kubernetes API's OpenAPI document (k8s.io/kubernetes module) -> JSON schemas in .tools/kubernetes-schemas/<v>
# Idempotent: tools of the pinned versions and existing schemas are kept.
#   bash deploy/helm/install-tools.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HELM_VERSION=v3.22.1
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VERSION=v1.34.2
BIN="$ROOT/.tools/go/bin"
SCHEMAS="$ROOT/.tools/kubernetes-schemas/$KUBERNETES_VERSION"
# Go as the polyglot machines install it, also when the PATH of a non-login shell lacks it.
export PATH="$PATH:/usr/local/go/bin" GOBIN="$BIN" GOTOOLCHAIN=local
mkdir -p "$BIN"
command -v go >/dev/null || { echo "go is not installed (the Go toolchain builds helm and kubeconform)" >&2; exit 1; }

if ! "$BIN/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  # The version helm reports is set at link time, as its release build does.
  go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
if ! "$BIN/kubeconform" -v 2>/dev/null | grep -qx "$KUBECONFORM_VERSION"; then
  # kubeconform reports the version set at link time; go install leaves it empty, so set it as its release does.
  go install -ldflags "-X main.version=$KUBECONFORM_VERSION" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
fi
if [ ! -s "$SCHEMAS/deployment-apps-v1.json" ]; then
  dir=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  node "$ROOT/deploy/helm/kube-schemas.mjs" "$dir/api/openapi-spec/swagger.json" "$SCHEMAS"
fi
echo "helm $("$BIN/helm" version --template '{{.Version}}'), kubeconform $("$BIN/kubeconform" -v), Kubernetes $KUBERNETES_VERSION schemas in $SCHEMAS"
