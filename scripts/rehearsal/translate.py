"""Translates template.yaml into plain CloudFormation with the SAM translator, offline.

Run with .venv-sam's Python (the SAM CLI's own translator): translate.py TEMPLATE OUT.json.
Each function's CodeUri (a local path to its built artifact) becomes s3://<bucket>/<Function>.zip, the
object the rehearsal uploads, since a stack can only take code from S3.
"""

import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

BUCKET = "dealbridge-rehearsal-code"


class NoManagedPolicies:
    """The template names managed policies by ARN only: nothing to look up in IAM."""

    def load(self):
        return {}


def main(source, out):
    with open(source, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.get("Properties", {})["CodeUri"] = f"s3://{BUCKET}/{name}.zip"
            resource.pop("Metadata", None)
    translated = transform(template, {}, NoManagedPolicies())
    with open(out, "w", encoding="utf-8") as f:
        json.dump(translated, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
