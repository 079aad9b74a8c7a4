"""Every GraphQL operation Visgate sends to Runpod, written once as a named document.

Values always travel as variables, never spliced into the text: the runpod-python SDK
builds its documents with f-strings (runpod/api/mutations/templates.py, endpoints.py) and
breaks on a quote in an env value. Variable types are declared non-null (`String!`,
`EndpointInput!`): a non-null variable is accepted whether Runpod declares the argument
nullable or not, so the documents stay valid either way.

Field names, checked against Runpod's docs (docs.runpod.io/sdks/graphql/manage-endpoints,
.../manage-pod-templates, graphql-spec.runpod.io) and the SDK's own queries
(runpod/api/queries/endpoints.py, queries/gpus.py):
- `saveTemplate(input: SaveTemplateInput)` creates, or updates when `input.id` is set;
  names are unique per account. `deleteTemplate(templateName:)` returns Void.
- `saveEndpoint(input: EndpointInput!)` creates, or with `id` REPLACES every field.
  `deleteEndpoint(id:)` returns Void and wants workersMin = workersMax = 0 first.
- `myself { endpoints {...} }` and `myself { podTemplates {...} }` list the account's
  endpoints and templates (serverless templates are podTemplates with isServerless).
- `gpuTypes { id displayName memoryInGb }`.
"""

from __future__ import annotations

from gql import gql
from gql.graphql_request import GraphQLRequest

TEMPLATE_FIELDS = """
  id
  name
  imageName
  isServerless
  containerDiskInGb
  volumeInGb
  dockerArgs
  env { key value }
"""

ENDPOINT_FIELDS = """
  id
  name
  templateId
  gpuIds
  gpuCount
  workersMin
  workersMax
  idleTimeout
  scalerType
  scalerValue
  flashBootType
  executionTimeoutMs
"""

LIST_TEMPLATES_DOC = f"query ListTemplates {{ myself {{ podTemplates {{ {TEMPLATE_FIELDS} }} }} }}"
LIST_ENDPOINTS_DOC = f"query ListEndpoints {{ myself {{ endpoints {{ {ENDPOINT_FIELDS} }} }} }}"
GPU_TYPES_DOC = "query GpuTypes { gpuTypes { id displayName memoryInGb } }"
SAVE_TEMPLATE_DOC = f"""
mutation SaveTemplate($input: SaveTemplateInput!) {{
  saveTemplate(input: $input) {{ {TEMPLATE_FIELDS} }}
}}
"""
SAVE_ENDPOINT_DOC = f"""
mutation SaveEndpoint($input: EndpointInput!) {{
  saveEndpoint(input: $input) {{ {ENDPOINT_FIELDS} }}
}}
"""
# Both return the Void scalar: a selection set would be a validation error.
DELETE_ENDPOINT_DOC = "mutation DeleteEndpoint($id: String!) { deleteEndpoint(id: $id) }"
DELETE_TEMPLATE_DOC = "mutation DeleteTemplate($templateName: String!) { deleteTemplate(templateName: $templateName) }"

LIST_TEMPLATES: GraphQLRequest = gql(LIST_TEMPLATES_DOC)
LIST_ENDPOINTS: GraphQLRequest = gql(LIST_ENDPOINTS_DOC)
GPU_TYPES: GraphQLRequest = gql(GPU_TYPES_DOC)
SAVE_TEMPLATE: GraphQLRequest = gql(SAVE_TEMPLATE_DOC)
SAVE_ENDPOINT: GraphQLRequest = gql(SAVE_ENDPOINT_DOC)
DELETE_ENDPOINT: GraphQLRequest = gql(DELETE_ENDPOINT_DOC)
DELETE_TEMPLATE: GraphQLRequest = gql(DELETE_TEMPLATE_DOC)


def operation_name(request: GraphQLRequest) -> str:
    """The document's operation name, for logs and error messages."""
    for definition in request.document.definitions:
        name = getattr(definition, "name", None)
        if name is not None:
            return str(name.value)
    return "anonymous"
