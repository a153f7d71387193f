from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "archsim.dram._cchannel",
            ["archsim/dram/_cchannel.c", "archsim/dram/_ctrace.c"],
            depends=["archsim/dram/_cchannel.h", "archsim/dram/_csched.h", "archsim/dram/_chost.h",
                     "archsim/dram/_cnmp.h", "archsim/dram/_cfab.h", "archsim/cache/_ctags_api.h"],
            extra_compile_args=["-O2"],
        ),
        Extension("archsim.gpu._csector", ["archsim/gpu/_csector.c"], extra_compile_args=["-O2"]),
        Extension("archsim.cache._ctags", ["archsim/cache/_ctags.c"], depends=["archsim/cache/_ctags_api.h"],
                  extra_compile_args=["-O2"]),
    ]
)
