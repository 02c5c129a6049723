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

{{/* The ServiceAccount (rendered only when the daemon talks to the API server: usesApi). */}}
{{- define "sgxdevplugin.serviceAccountName" -}}
{{- include "sgxdevplugin.fullname" . }}
{{- end }}

{{/* Where the host's /dev is mounted in the container, passed as --dev-root. */}}
{{- define "sgxdevplugin.devRoot" -}}
/host/dev
{{- end }}

{{/*
The node labels the daemon owns, "<resourceDomain>/<name>", and with compat intel
"sgx.intel.com/capable", as a CEL list of strings (the names are src/kube/labeler.h's LABEL_*;
tests/chart checks that they agree).
*/}}
{{- define "sgxdevplugin.labelKeys" -}}
{{- $d := .Values.resourceDomain }}
{{- $keys := list }}
{{- range list "sgx" "dcap" "ias" "sgx2" "flc" "epc-mib" }}
{{- $keys = append $keys (printf "'%s/%s'" $d .) }}
{{- end }}
{{- if has "intel" .Values.compat }}{{ $keys = append $keys "'sgx.intel.com/capable'" }}{{ end }}
{{- printf "[%s]" (join ", " $keys) }}
{{- end }}

{{/* The DRA flags, one YAML list item a line after a newline (none without dra.enabled): the
daemon's, and the same for its liveness probe, which then checks the DRA sockets too. */}}
{{- define "sgxdevplugin.draArgs" -}}
{{- if .Values.dra.enabled }}
- "--dra"
- {{ printf "--plugins-registry=%s" .Values.dra.pluginsRegistry | quote }}
- {{ printf "--dra-dir=%s" (include "sgxdevplugin.draDir" .) | quote }}
{{- if not .Values.dra.deviceplugin }}
- "--no-device-plugin"
{{- end }}
{{- end }}
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
{{- if include "sgxdevplugin.cdi" . }}
- "--cdi"
- {{ printf "--cdi-dir=%s" (include "sgxdevplugin.cdiDir" .) | quote }}
{{- end }}
{{- include "sgxdevplugin.draArgs" . }}
{{- /* publish <resourceDomain>/epc: PATCH nodes/status with the node's EPC capacity */}}
{{- if .Values.epcResource }}
- "--epc-resource"
{{- end }}
{{- with .Values.compat }}
- {{ printf "--compat=%s" (join "," .) | quote }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
True ("true") when the daemon talks to the API server: node labels, EPC capacity, or DRA
(ResourceSlices, ResourceClaims, its Node for the slices' owner).
*/}}
{{- define "sgxdevplugin.usesApi" -}}
{{- if or .Values.labelNodes .Values.epcResource .Values.dra.enabled }}true{{ end }}
{{- end }}

{{/*
True ("true") when the daemon writes a CDI spec: `cdi`, or DRA (NodePrepareResources answers
with CDI device IDs, so the spec must exist). One place decides --cdi and the /var/run/cdi mount.
*/}}
{{- define "sgxdevplugin.cdi" -}}
{{- if or .Values.cdi .Values.dra.enabled }}true{{ end }}
{{- end }}

{{/* The host directory the CDI spec goes to, mounted at the same path (--cdi-dir). */}}
{{- define "sgxdevplugin.cdiDir" -}}
/var/run/cdi
{{- end }}

{{/* The DRA driver's directory on the host (--dra-dir): dra.pluginDir, else the kubelet's
plugins dir for the driver <resourceDomain>. */}}
{{- define "sgxdevplugin.draDir" -}}
{{- default (printf "/var/lib/kubelet/plugins/%s" .Values.resourceDomain) .Values.dra.pluginDir }}
{{- end }}

{{/* The DRA driver's name: resourceDomain (--resource-domain), also the DeviceClass's name. */}}
{{- define "sgxdevplugin.draDriver" -}}
{{- .Values.resourceDomain }}
{{- end }}

{{/* The ServiceAccount's user name in admission requests, for the policies' matchConditions. */}}
{{- define "sgxdevplugin.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "sgxdevplugin.serviceAccountName" .) }}
{{- end }}

{{/* CEL, for the policies: the node the requesting pod runs on, from its pod-bound token's
authentication.kubernetes.io/node-name extra ('' when it has none, or more than one). */}}
{{- define "sgxdevplugin.celNodeName" -}}
has(request.userInfo.extra) &&
'authentication.kubernetes.io/node-name' in request.userInfo.extra &&
size(request.userInfo.extra['authentication.kubernetes.io/node-name']) == 1
? request.userInfo.extra['authentication.kubernetes.io/node-name'][0] : ''
{{- end }}

{{/*
The node status capacity keys the daemon owns with epcResource, as a CEL list of
strings: <resourceDomain>/epc, and the EPC names of the compat plugins.
*/}}
{{- define "sgxdevplugin.capacityKeys" -}}
{{- $keys := list }}
{{- if .Values.epcResource }}
{{- $keys = append $keys (printf "'%s/epc'" .Values.resourceDomain) }}
{{- if has "intel" .Values.compat }}{{ $keys = append $keys "'sgx.intel.com/epc'" }}{{ end }}
{{- if has "azure" .Values.compat }}{{ $keys = append $keys "'kubernetes.azure.com/sgx_epc_mem_in_MiB'" }}{{ end }}
{{- if has "alibaba" .Values.compat }}{{ $keys = append $keys "'alibabacloud.com/sgx_epc_MiB'" }}{{ end }}
{{- end }}
{{- printf "[%s]" (join ", " $keys) }}
{{- end }}

{{/*
CEL, for the MutatingAdmissionPolicy: whether container C (a CEL expression) names resource N in
its requests or limits. Called with (dict "c" C "n" N).
*/}}
{{- define "sgxdevplugin.celAsks" -}}
{{- printf "(has(%[1]s.resources) && ((has(%[1]s.resources.limits) && '%[2]s' in %[1]s.resources.limits) || (has(%[1]s.resources.requests) && '%[2]s' in %[1]s.resources.requests)))" .c .n }}
{{- end }}

{{/*
CEL: container C's amount of resource N as an int (its request, else its limit; extended
resources have requests == limits), 0 when it names none. (dict "c" C "n" N)
*/}}
{{- define "sgxdevplugin.celAmount" -}}
{{- printf "(has(%[1]s.resources) && has(%[1]s.resources.requests) && '%[2]s' in %[1]s.resources.requests ? quantity(string(%[1]s.resources.requests['%[2]s'])).asInteger() : has(%[1]s.resources) && has(%[1]s.resources.limits) && '%[2]s' in %[1]s.resources.limits ? quantity(string(%[1]s.resources.limits['%[2]s'])).asInteger() : 0)" .c .n }}
{{- end }}
