{{/* Names and labels shared by every template. */}}
{{- define "tbproxy.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tbproxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tbproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tbproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tbproxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "tbproxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tbproxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tbproxy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The most pods that can run at once: the HPA's maxReplicas (or the fixed replicaCount) plus the
pods a rolling update may add.
*/}}
{{- define "tbproxy.podsMax" -}}
{{- if .Values.autoscaling.enabled -}}
{{- add .Values.autoscaling.maxReplicas .Values.rollingUpdate.maxSurge -}}
{{- else -}}
{{- add .Values.replicaCount .Values.rollingUpdate.maxSurge -}}
{{- end -}}
{{- end -}}

{{/*
Session arithmetic (README "Session budget"): every pod may hold proxy.sessionBudget of the
cluster's clientsMax session slots, and the fleet must leave reservedSessions free for the
cluster's other clients:
  podsMax x sessionBudget <= clientsMax - reservedSessions < clientsMax
Rendering fails when this or a per-pod bound does not hold.
*/}}
{{- define "tbproxy.validate" -}}
{{- $clientsMax := int .Values.cluster.clientsMax -}}
{{- $reserved := int .Values.cluster.reservedSessions -}}
{{- $sessions := int .Values.proxy.sessions -}}
{{- $budget := int .Values.proxy.sessionBudget -}}
{{- $podsMax := int (include "tbproxy.podsMax" .) -}}
{{- $fleetBudget := sub $clientsMax $reserved -}}
{{- if lt $reserved 1 -}}
{{- fail "cluster.reservedSessions must be at least 1: other clients of the cluster need a session" -}}
{{- end -}}
{{- if gt $sessions $budget -}}
{{- fail (printf "proxy.sessions (%d) must not exceed proxy.sessionBudget (%d)" $sessions $budget) -}}
{{- end -}}
{{- if ge $budget $clientsMax -}}
{{- fail (printf "proxy.sessionBudget (%d) must stay below cluster.clientsMax (%d)" $budget $clientsMax) -}}
{{- end -}}
{{- if gt (mul $podsMax $budget) $fleetBudget -}}
{{- fail (printf "session budget exceeded: %d pods x proxy.sessionBudget %d = %d sessions, but cluster.clientsMax %d - cluster.reservedSessions %d leaves %d; lower autoscaling.maxReplicas (or replicaCount), rollingUpdate.maxSurge or proxy.sessionBudget" $podsMax $budget (mul $podsMax $budget) $clientsMax $reserved $fleetBudget) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- fail "tls.enabled needs tls.secretName (an existing Secret with tls.crt and tls.key)" -}}
{{- end -}}
{{- if and .Values.auth.enabled (not .Values.auth.secretName) -}}
{{- fail "auth.enabled needs auth.secretName (an existing Secret with key tokens)" -}}
{{- end -}}
{{- end -}}
