"""S3 credentials when no key pair is set: the standard chain, with minio's providers.

In order, the first that yields credentials wins (and is asked again when they expire):
1. the environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
2. a web identity token (Kubernetes service-account tokens, EKS IRSA):
   AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, exchanged at STS (AssumeRoleWithWebIdentity);
3. the ECS container role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI);
4. the instance role, from the instance metadata service with an IMDSv2 session token.
Steps 2 to 4 are minio's IamAwsProvider; CONVERTLY_S3_CREDENTIALS_ENDPOINT replaces the
address it asks (an STS of another S3 service, or a metadata proxy).

When none yields credentials, each request to the storage fails with
StorageMisconfiguredError naming the settings, which stops `convertly serve` at start-up.
"""

from __future__ import annotations

import urllib3
from minio.credentials.credentials import Credentials
from minio.credentials.providers import (
    ChainedProvider,
    EnvAWSProvider,
    IamAwsProvider,
    Provider,
)

from convertly.errors import StorageMisconfiguredError

NO_CREDENTIALS = (
    "no S3 credentials: set CONVERTLY_S3_ACCESS_KEY and CONVERTLY_S3_SECRET_KEY, or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the process a web identity token "
    "(AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN) or an instance role."
)
# The metadata service answers on the local link in milliseconds, or not at all.
METADATA_TIMEOUT = 2.0


class CredentialChain(Provider):
    """minio's ChainedProvider over the standard providers, with a clear error when none of
    them has credentials (minio raises a bare ValueError)."""

    def __init__(self, endpoint: str | None = None) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=METADATA_TIMEOUT, read=METADATA_TIMEOUT),
            retries=urllib3.Retry(total=2, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]),
        )
        self.providers: list[Provider] = [
            EnvAWSProvider(),
            IamAwsProvider(custom_endpoint=endpoint or None, http_client=http),
        ]
        self._chain = ChainedProvider(self.providers)

    def retrieve(self) -> Credentials:
        try:
            return self._chain.retrieve()
        except (ValueError, urllib3.exceptions.HTTPError) as exc:
            raise StorageMisconfiguredError(reason=NO_CREDENTIALS) from exc
