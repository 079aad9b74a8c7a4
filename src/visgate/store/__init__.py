"""Where records live: the `DocumentBackend` protocol (base.py) with its sqlite and firestore
backends, and `DeploymentStore` (repository.py), the domain API over any backend. Imports domain/.
"""
