# The CodeBuild project of audiobook-tts, as code: the build that buildspec.yml describes,
# the ECR repository that holds the image and its registry cache, and the role between them.
# `inv doctor --codebuild audiobook-tts` checks a deployed project against what this sets.
# tests/unit/infra/test_infra.py parses this file (no provider can be fetched where it is
# tested, so neither `terraform validate` nor `tofu validate` has run on it).
#
# Where the layers are kept between builds, one of two (var.docker_server):
#
# - Docker Server (the default): CodeBuild keeps one Docker server per project (AWS, May 2025).
#   The build's Docker CLI reaches it over the network (TCP 9876), so its engine, its
#   BuildKit cache and its images outlive the build: the next build finds every unchanged
#   layer already there, nothing to pull. AWS's own example went from 24 min 54 s to 16 s.
#   Costs: the server's compute type is billed while builds run, on top of the build's own
#   (CodeBuild's pricing page has the rates); it is stopped between builds and kept for up
#   to a month before it is recycled (then one cold build). x86 Linux only: CodeBuild refuses
#   it for ARM_CONTAINER. `inv ci` builds with the engine's own builder (INVOKE_CI_CACHE=
#   inline): users of the feature report that a `docker buildx create` builder does not
#   build on the server.
# - ECR registry cache (docker_server = false): `inv ci` exports the cache to
#   <repository>:buildcache through a docker-container builder (cache-to
#   type=registry,mode=max,image-manifest=true,oci-mediatypes=true; ECR needs the last two),
#   because CodeBuild's engine has the classic image store, whose own builder exports no
#   cache but inline. Gives: any build host, any time, reads the cache. Costs: ECR storage
#   for the cache (the lifecycle rules below bound it), and each build pulls the layers it
#   reuses and pushes the cache back: minutes for the torch layers, where the Docker Server
#   has them on its disk. Needs privileged mode (the build's own dockerd) and a pullable
#   BuildKit image (INVOKE_IMAGEBUILD_BUILDKIT_IMAGE: an ECR pull-through cache of it).
#   LOCAL_DOCKER_LAYER_CACHE rides along here: free, but best effort (only a build that
#   lands on the same host soon after finds it), so never the cache to rely on.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      # environment.docker_server: in the provider's schema from 6.2.0 (absent in 6.0.0).
      version = ">= 6.2, < 7.0"
    }
  }
}

variable "project_name" {
  description = "CodeBuild project, ECR repository and log group name"
  type        = string
  default     = "audiobook-tts"
}

variable "source_location" {
  description = "HTTPS URL of the Git repository CodeBuild builds"
  type        = string
}

variable "base_image" {
  description = "The image's base: Python 3.11 on Debian (the Dockerfile adds espeak-ng)"
  type        = string
  default     = "public.ecr.aws/docker/library/python:3.11-slim-bookworm"
}

variable "docker_server" {
  description = "Keep the layers on CodeBuild's Docker Server (true) or in an ECR registry cache through a docker-container builder (false); the header of this file says what each costs"
  type        = bool
  default     = true
}

variable "docker_server_compute_type" {
  description = "The Docker Server's size: SMALL 2 vCPU/4 GiB, MEDIUM 4/8, LARGE 8/16, XLARGE 32/64, 2XLARGE 64/128; billed while builds run"
  type        = string
  default     = "BUILD_GENERAL1_MEDIUM"
  validation {
    condition = contains([
      "BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE",
      "BUILD_GENERAL1_XLARGE", "BUILD_GENERAL1_2XLARGE",
    ], var.docker_server_compute_type)
    error_message = "docker_server_compute_type must be BUILD_GENERAL1_SMALL, _MEDIUM, _LARGE, _XLARGE or _2XLARGE."
  }
}

variable "vpc_id" {
  description = "Run the builds in this VPC (empty: CodeBuild's own network); with the Docker Server, a security group then lets the builds reach it on port 9876. The subnets need a NAT gateway for pip and ECR"
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "Private subnets of vpc_id for the builds (required with vpc_id)"
  type        = list(string)
  default     = []
}

variable "docker_server_security_group_ids" {
  description = "Security groups of your own for the Docker Server (at most 5 with the one made here); each must let the project's VPC in on TCP 9876"
  type        = list(string)
  default     = []
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  registry = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.region}.amazonaws.com"

  # What each way of keeping layers sets on the project; tests/unit/infra/test_infra.py
  # reads this map. ci_cache is `inv ci`'s cache (INVOKE_CI_CACHE): inline builds with the
  # engine's own builder (the Docker Server keeps its cache), registry exports to ECR.
  cache_strategies = {
    docker_server = {
      ci_cache = "inline"
      # The engine is the server's: the build container runs no dockerd of its own.
      privileged_mode   = false
      local_cache_modes = ["LOCAL_SOURCE_CACHE"]
    }
    ecr_registry = {
      ci_cache          = "registry"
      privileged_mode   = true
      local_cache_modes = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]
    }
  }
  cache_strategy = local.cache_strategies[var.docker_server ? "docker_server" : "ecr_registry"]
  in_vpc         = var.vpc_id != ""
}

# One repository for the image (tags: latest, and the commit) and its registry cache
# (tag: buildcache, written by `inv ci` with image-manifest=true,oci-mediatypes=true).
resource "aws_ecr_repository" "image" {
  name                 = var.project_name
  image_tag_mutability = "MUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }
}

# Cache exports replace the buildcache tag and leave the old manifest untagged; these rules
# keep cache and commit tags from growing forever (infra/ecr-lifecycle.json says how).
resource "aws_ecr_lifecycle_policy" "image" {
  repository = aws_ecr_repository.image.name
  policy     = file("${path.module}/ecr-lifecycle.json")
}

resource "aws_s3_bucket" "build_logs" {
  bucket_prefix = "${var.project_name}-build-logs-"
}

resource "aws_s3_bucket_lifecycle_configuration" "build_logs" {
  bucket = aws_s3_bucket.build_logs.id

  rule {
    id     = "expire-build-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = 30
    }
  }
}

resource "aws_cloudwatch_log_group" "build" {
  name              = "/codebuild/${var.project_name}"
  retention_in_days = 30
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "codebuild" {
  name               = "${var.project_name}-codebuild"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "codebuild" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "EcrImageAndCache"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.image.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.build.arn}:*"]
  }
  statement {
    sid       = "Artifacts"
    actions   = ["s3:PutObject", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.build_logs.arn, "${aws_s3_bucket.build_logs.arn}/*"]
  }
}

# In a VPC: the builds' security group, and the Docker Server's, which lets them in on the
# server's port (AWS: "allow ingress traffic from the VPC configured in the project on port
# 9876"). Outside a VPC the server needs no security group.
resource "aws_security_group" "build" {
  count       = local.in_vpc ? 1 : 0
  name_prefix = "${var.project_name}-build-"
  description = "CodeBuild builds of ${var.project_name}"
  vpc_id      = var.vpc_id

  egress {
    description = "pip, ECR, the Docker Server"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "docker_server" {
  count       = local.in_vpc && var.docker_server ? 1 : 0
  name_prefix = "${var.project_name}-docker-server-"
  description = "CodeBuild Docker Server of ${var.project_name}"
  vpc_id      = var.vpc_id

  ingress {
    description     = "the project's builds reach the Docker Server"
    from_port       = 9876
    to_port         = 9876
    protocol        = "tcp"
    security_groups = [aws_security_group.build[0].id]
  }

  egress {
    description = "base images and pip from the internet, ECR"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

data "aws_iam_policy_document" "vpc" {
  count = local.in_vpc ? 1 : 0
  statement {
    sid = "BuildsInTheVpc"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeDhcpOptions",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeVpcs",
      "ec2:CreateNetworkInterfacePermission",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "vpc" {
  count  = local.in_vpc ? 1 : 0
  role   = aws_iam_role.codebuild.id
  policy = data.aws_iam_policy_document.vpc[0].json
}

resource "aws_iam_role_policy" "codebuild" {
  role   = aws_iam_role.codebuild.id
  policy = data.aws_iam_policy_document.codebuild.json
}

resource "aws_codebuild_project" "image" {
  name          = var.project_name
  description   = "Builds, pushes and smoke-tests the audiobook-tts image (inv ci)"
  service_role  = aws_iam_role.codebuild.arn
  build_timeout = 60

  source {
    type      = "GITHUB"
    location  = var.source_location
    buildspec = "buildspec.yml"
  }

  artifacts {
    type      = "S3"
    location  = aws_s3_bucket.build_logs.bucket
    name      = "build-logs"
    packaging = "ZIP"
  }

  # LOCAL_SOURCE_CACHE saves the clone. LOCAL_DOCKER_LAYER_CACHE only with the ECR registry
  # cache: it keeps the build's own dockerd layers on the host (best effort: a new host
  # starts cold); with the Docker Server the build's dockerd holds nothing worth keeping.
  cache {
    type  = "LOCAL"
    modes = local.cache_strategy.local_cache_modes
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [var.vpc_id] : []
    content {
      vpc_id             = vpc_config.value
      subnets            = var.subnet_ids
      security_group_ids = [aws_security_group.build[0].id]
    }
  }

  environment {
    compute_type    = "BUILD_GENERAL1_MEDIUM"
    image           = "aws/codebuild/standard:7.0"
    type            = "LINUX_CONTAINER"
    privileged_mode = local.cache_strategy.privileged_mode

    # The persistent Docker server (provider >= 6.2): compute_type is required,
    # security_group_ids optional (up to 5; only meaningful in a VPC).
    dynamic "docker_server" {
      for_each = var.docker_server ? [var.docker_server_compute_type] : []
      content {
        compute_type       = docker_server.value
        security_group_ids = concat(
          aws_security_group.docker_server[*].id, var.docker_server_security_group_ids
        )
      }
    }

    environment_variable {
      name  = "INVOKE_CI_CACHE"
      value = local.cache_strategy.ci_cache
    }
    environment_variable {
      name  = "INVOKE_IMAGEBUILD_REGISTRY"
      value = local.registry
    }
    environment_variable {
      name  = "INVOKE_IMAGEBUILD_IMAGE"
      value = var.project_name
    }
    environment_variable {
      name  = "INVOKE_IMAGEBUILD_BASE_IMAGE"
      value = var.base_image
    }
    environment_variable {
      name  = "PIP_EXTRA_INDEX_URL"
      value = "https://download.pytorch.org/whl/cpu"
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build.name
    }
  }

  lifecycle {
    precondition {
      condition     = !local.in_vpc || length(var.subnet_ids) > 0
      error_message = "vpc_id is set: name its private subnets in subnet_ids."
    }
    precondition {
      condition     = length(var.docker_server_security_group_ids) + (local.in_vpc ? 1 : 0) <= 5
      error_message = "The Docker Server takes at most 5 security groups."
    }
  }
}

output "repository_url" {
  value = aws_ecr_repository.image.repository_url
}

output "cache_strategy" {
  description = "Where the project keeps its layers between builds"
  value       = var.docker_server ? "Docker Server (${var.docker_server_compute_type})" : "ECR registry cache (${aws_ecr_repository.image.repository_url}:buildcache)"
}
