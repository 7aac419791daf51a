import sys

from scalecap_ray.cli import main

sys.exit(main())
