{{/*
_helpers.tpl - names, labels and the daemon's command line, shared by every template.
*/}}

{{/* The chart name, at most 63 characters. */}}
{{- define "sgxdevplugin.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's object name: the release name when it already holds the chart name (the usual
`helm install sgxdevplugin ...`), else "<release>-<chart>"; at most 63 characters.
*/}}
{{- define "sgxdevplugin.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels that select the DaemonSet's pods: fixed for the release's life (selectors are immutable). */}}
{{- define "sgxdevplugin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sgxdevplugin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "sgxdevplugin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sgxdevplugin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: device-plugin
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount (rendered only with labelNodes). */}}
{{- define "sgxdevplugin.serviceAccountName" -}}
{{- include "sgxdevplugin.fullname" . }}
{{- end }}

{{/* Where the host's /dev is mounted in the container, passed as --dev-root. */}}
{{- define "sgxdevplugin.devRoot" -}}
/host/dev
{{- end }}

{{/*
The node labels the daemon owns, "<resourceDomain>/<name>", as a CEL list of strings (the names are
src/kube/labeler.h's LABEL_*; tests/chart checks that they agree).
*/}}
{{- define "sgxdevplugin.labelKeys" -}}
{{- $d := .Values.resourceDomain }}
{{- $keys := list }}
{{- range list "sgx" "dcap" "ias" "sgx2" "flc" "epc-mib" }}
{{- $keys = append $keys (printf "'%s/%s'" $d .) }}
{{- end }}
{{- printf "[%s]" (join ", " $keys) }}
{{- end }}

{{/* The daemon's arguments, one YAML list item a line. */}}
{{- define "sgxdevplugin.args" -}}
- {{ printf "--kubelet-dir=%s" .Values.kubeletDir | quote }}
- {{ printf "--dev-root=%s" (include "sgxdevplugin.devRoot" .) | quote }}
- {{ printf "--max-pods=%d" (int64 .Values.maxSGXPods) | quote }}
- {{ printf "--resource-domain=%s" .Values.resourceDomain | quote }}
- {{ printf "--log-format=%s" .Values.logFormat | quote }}
- {{ printf "--log-level=%s" .Values.logLevel | quote }}
{{- if not .Values.provision }}
- "--no-provision"
{{- end }}
{{- if .Values.labelNodes }}
- "--label-node"
{{- end }}
{{- if .Values.cdi }}
- "--cdi"
- "--cdi-dir=/var/run/cdi"
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
