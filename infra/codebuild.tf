# The CodeBuild project of audiobook-tts, as code: the build that buildspec.yml describes,
# the ECR repository that holds the image and its registry cache, and the role between them.
# `inv doctor --codebuild audiobook-tts` checks a deployed project against what this sets.
# tests/unit/infra/test_infra.py parses this file (no provider can be fetched where it is tested).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
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

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  registry = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com"
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

  # LOCAL_DOCKER_LAYER_CACHE keeps the engine's layers on the build host between builds
  # (best effort: a new host starts cold); the registry cache in ECR is what a fresh host
  # reads. LOCAL_SOURCE_CACHE saves the clone.
  cache {
    type  = "LOCAL"
    modes = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]
  }

  environment {
    compute_type    = "BUILD_GENERAL1_MEDIUM"
    image           = "aws/codebuild/standard:7.0"
    type            = "LINUX_CONTAINER"
    privileged_mode = true

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
}

output "repository_url" {
  value = aws_ecr_repository.image.repository_url
}
