{{- define "convertly.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "convertly.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "convertly.secretName" -}}
{{- .Values.existingSecret | default (include "convertly.fullname" .) -}}
{{- end -}}

{{- define "convertly.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "convertly.redisUrl" -}}
{{- if .Values.redis.enabled -}}
redis://{{ include "convertly.fullname" . }}-redis:6379
{{- else -}}
{{- required "redis.externalUrl is required when redis.enabled is false" .Values.redis.externalUrl | trimSuffix "/" -}}
{{- end -}}
{{- end -}}

{{/* The settings every Convertly container reads, and its Secret. */}}
{{- define "convertly.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "convertly.fullname" . }}
  - secretRef:
      name: {{ include "convertly.secretName" . }}
{{- end -}}
