from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .models import Job, JobStatus


class JobOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_type = serializers.SlugRelatedField(slug_field="code", read_only=True)
    machine = serializers.SlugRelatedField(slug_field="code", read_only=True)
    post = serializers.SlugRelatedField(slug_field="code", read_only=True)
    material = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    template = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = (
            "id",
            "external_id",
            "tenant",
            "model_type",
            "machine",
            "post",
            "material",
            "template",
            "status",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "updated_at",
        )
        read_only_fields = fields


class JobFilterSerializer(serializers.Serializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=JobStatus.choices), required=False)
    tenant = serializers.SlugField(required=False)
    machine = serializers.CharField(required=False, max_length=64)
    post = serializers.CharField(required=False, max_length=64)
    model_type = serializers.CharField(required=False, max_length=64)
    external_id = serializers.CharField(required=False, max_length=64)
    created_from = serializers.DateTimeField(required=False)
    created_to = serializers.DateTimeField(required=False)

    def to_internal_value(self, data):
        # Query strings repeat a key (?status=a&status=b) or join values (?status=a,b); accept both.
        if hasattr(data, "getlist"):
            plain = {k: data.get(k) for k in data}
            statuses = [s for v in data.getlist("status") for s in v.split(",") if s]
            if "status" in plain:
                # A blank ?status= (an empty form field) means any status, not "a string is not a list".
                plain["status"] = statuses
            data = plain
        return super().to_internal_value(data)

    def validate(self, attrs):
        if attrs.get("created_from") and attrs.get("created_to") and attrs["created_from"] >= attrs["created_to"]:
            raise serializers.ValidationError({"created_to": _("Must be after created_from.")})
        return attrs


class JobStatusChangeInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.IntegerField(min_value=0, max_value=100, required=False, allow_null=True)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
