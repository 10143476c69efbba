# Runs one fuzzer for ctest (see CMakeLists.txt here):
#   cmake -DFUZZER=bin -DMODE=fuzz -DSECONDS=n -DSEEDS=corpus -DWORK=dir -P run_fuzzer.cmake
#       fuzzes for n seconds; new inputs go to WORK/corpus, crash inputs to WORK/crashes
#   cmake -DFUZZER=bin -DMODE=regressions -DSEEDS=folder -DWORK=dir -P run_fuzzer.cmake
#       runs every file in the folder once and fails if any of them crashes
# The source tree is never written: libFuzzer adds inputs only to the first corpus folder.
cmake_minimum_required(VERSION 3.25)

file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/crashes)
# Limits that hold on the 2-core CI machine: an input that takes 10 s or 2 GiB is a
# finding (a hang or a memory blow-up a peer could cause), not a slow machine.
set(limits -rss_limit_mb=2048 -timeout=10 -artifact_prefix=${WORK}/crashes/)

if(MODE STREQUAL "fuzz")
  execute_process(COMMAND ${FUZZER} ${limits} -max_total_time=${SECONDS} -print_final_stats=1
                          ${WORK}/corpus ${SEEDS}
                  RESULT_VARIABLE status)
elseif(MODE STREQUAL "regressions")
  file(GLOB inputs LIST_DIRECTORIES false ${SEEDS}/*)
  if(NOT inputs)
    message(STATUS "no regression inputs in ${SEEDS}")
    return()
  endif()
  # Files, not a folder, as arguments: libFuzzer then runs each once and does not fuzz.
  execute_process(COMMAND ${FUZZER} ${limits} ${inputs} RESULT_VARIABLE status)
else()
  message(FATAL_ERROR "MODE must be fuzz or regressions")
endif()

if(NOT status EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${status}); inputs that crashed are in ${WORK}/crashes")
endif()
