{{/*
The placeholder spec the lens service and `lens workshop prewarm` read
($LENS_PLACEHOLDERS, jupyter_ext/workshop/placeholders.py: PlaceholderSpec):
z2jh's user-placeholder StatefulSet (fixed name: fullnameOverride ""), what one
placeholder requests and where it runs, the always-there count, the cap, and
the continuous pre-puller's images.
*/}}
{{- define "lens.placeholders" -}}
{{- $jh := .Values.jupyterhub -}}
{{- $ph := $jh.scheduling.userPlaceholder -}}
{{- if not $ph.enabled -}}
{{- fail "lens.prewarm.enabled needs jupyterhub.scheduling.userPlaceholder.enabled (the placeholders it scales)" -}}
{{- end -}}
{{- $requests := dig "resources" "requests" dict $ph -}}
{{- if not (and $requests.cpu $requests.memory) -}}
{{- fail "lens.prewarm.enabled needs jupyterhub.scheduling.userPlaceholder.resources.requests.cpu and .memory (a placeholder must hold room)" -}}
{{- end -}}
{{- $images := list -}}
{{- if $jh.prePuller.continuous.enabled -}}
{{- range $key, $image := $jh.prePuller.extraImages -}}
{{- $images = append $images (printf "%s:%s" $image.name $image.tag) -}}
{{- end -}}
{{- end -}}
{{- dict "statefulset" "user-placeholder" "namespace" .Release.Namespace "requests" (dict "cpu" (toString $requests.cpu) "memory" (toString $requests.memory)) "nodeSelector" (dig "extraPodSpec" "nodeSelector" dict $ph) "baseReplicas" (int (default 0 $ph.replicas)) "maxReplicas" (int .Values.lens.prewarm.maxPlaceholders) "prepulledImages" $images | toJson -}}
{{- end -}}
